//! Driving the `corral` and `runc` command lines from end-to-end tests.
//!
//! [`Cli`] runs one runtime's binary with its own `--root`, so tests never
//! touch `/run/corral` or `/run/runc`. [`Cli::exec`] captures stdout and
//! stderr in memfds rather than pipes: a container created with
//! `process.terminal: false` inherits the runtime's stdio and may outlive
//! it, and a pipe would make the caller wait for the container too.
//! [`Cli::spawn_pty`] runs a command with a fresh pty as its stdin and
//! stdout (runc refuses `terminal: true` without one), and [`Bundle`] is
//! runc's default `config.json` over a busybox rootfs.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};
use rustix::pty::OpenptFlags;

use crate::{TempDir, build_busybox_rootfs, host_mounts_under, unique_id};

/// Longest a test waits for a process to exit or a pty to print before it
/// fails as hung. This bounds a wait that should end; it is not a
/// performance assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The `corral` binary built by crate `corral-cli`: `target/<profile>/corral`,
/// next to the `deps/` directory holding this test executable. Cargo cannot
/// make another package's binary a dependency of these tests, so it must be
/// built (and rebuilt after changes) with `cargo build` first.
///
/// # Panics
///
/// If it has not been built.
pub fn corral_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("corral"));
    match bin {
        Some(bin) if bin.is_file() => bin,
        _ => panic!(
            "the corral CLI binary is not built (looked for {bin:?}, next to the test executable's \
             deps/ dir): run `cargo build -p corral-cli` (or `cargo build --workspace`) before \
             `cargo test`; `cargo test` alone does not build another package's binary"
        ),
    }
}

/// `runc` from `$PATH`.
///
/// # Panics
///
/// If it is not installed: these tests compare corral with runc and must
/// not pass without doing so.
pub fn runc_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("runc"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "runc not found in PATH: these tests compare corral's behaviour with runc's; \
                 install it with `apt-get install runc`"
            )
        })
}

/// One runtime's command line with its own state root.
#[derive(Clone, Debug)]
pub struct Cli {
    name: &'static str,
    bin: PathBuf,
    root: PathBuf,
}

impl Cli {
    /// `corral --root <root>`.
    pub fn corral(root: impl Into<PathBuf>) -> Self {
        Cli {
            name: "corral",
            bin: corral_bin(),
            root: root.into(),
        }
    }

    /// `runc --root <root>`.
    pub fn runc(root: impl Into<PathBuf>) -> Self {
        Cli {
            name: "runc",
            bin: runc_bin(),
            root: root.into(),
        }
    }

    /// `corral` or `runc`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn command<I, S>(&self, args: I) -> (Command, String)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root).args(&args);
        let shown = std::iter::once(self.name.to_owned())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        (cmd, shown)
    }

    /// Runs `<bin> --root <root> <args>` with stdin from /dev/null and
    /// stdout/stderr captured, and waits for that process (not for any
    /// container it leaves running).
    pub fn exec<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec_in(None, args)
    }

    /// [`Cli::exec`] in the working directory `cwd` (else ours).
    pub fn exec_in<I, S>(&self, cwd: Option<&Path>, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, shown) = self.command(args);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let stdout = memfd("stdout");
        let stderr = memfd("stderr");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout.try_clone().expect("dup memfd")))
            .stderr(Stdio::from(stderr.try_clone().expect("dup memfd")));
        let status = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{shown}`: {e}"))
            .wait()
            .unwrap_or_else(|e| panic!("wait for `{shown}`: {e}"));
        Output {
            command: shown,
            status,
            stdout: read_all(stdout),
            stderr: read_all(stderr),
        }
    }

    /// Spawns `<bin> --root <root> <args>` with a new pty's slave as stdin
    /// and stdout (stderr captured apart, so the pty carries only what the
    /// container prints). Nothing is written to the master, so nothing is
    /// echoed into the output.
    pub fn spawn_pty<I, S>(&self, args: I) -> PtySession
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_pty_sized(args, None)
    }

    /// [`Cli::spawn_pty`] with the pty's window size set to `(rows, cols)`
    /// first.
    pub fn spawn_pty_sized<I, S>(&self, args: I, size: Option<(u16, u16)>) -> PtySession
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, shown) = self.command(args);
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = rustix::pty::openpt(flags).expect("openpt");
        rustix::pty::grantpt(&master).expect("grantpt");
        rustix::pty::unlockpt(&master).expect("unlockpt");
        let slave =
            rustix::pty::ioctl_tiocgptpeer(&master, flags).expect("open pty slave (TIOCGPTPEER)");
        // No output processing on our side of the pty: a runtime switches
        // its terminal to raw mode itself, but runc does so while it may
        // already be copying the container's output, and each `\r\n` then
        // races into `\r\r\n` through ONLCR. Pre-clearing OPOST makes the
        // bytes read here the container's own, whoever wins that race.
        let mut modes = rustix::termios::tcgetattr(&slave).expect("tcgetattr pty slave");
        modes.output_modes -= rustix::termios::OutputModes::OPOST;
        rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &modes)
            .expect("tcsetattr pty slave");
        if let Some((rows, cols)) = size {
            let size = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            rustix::termios::tcsetwinsize(&slave, size).expect("set the pty's window size");
        }
        let stderr = memfd("stderr");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave))
            .stderr(Stdio::from(stderr.try_clone().expect("dup memfd")));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{shown}`: {e}"));
        // `cmd` holds the last parent-side slave fds: without dropping it the
        // master would never see EIO.
        drop(cmd);
        let pty = PtyReader::new(master, format!("the pty of `{shown}`"));
        PtySession {
            command: shown,
            pty,
            child,
            stderr,
        }
    }

    /// `run --bundle <bundle> --pid-file <pid_file> <id>` under a pty, to
    /// completion.
    pub fn run_pty(&self, bundle: &Path, pid_file: &Path, id: &str) -> Output {
        self.spawn_pty([
            OsStr::new("run"),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new("--pid-file"),
            pid_file.as_os_str(),
            OsStr::new(id),
        ])
        .finish()
    }

    /// `delete --force <id>` when dropped, so a failing test leaves no
    /// container behind.
    pub fn guard(&self, id: &str) -> DeleteGuard {
        DeleteGuard {
            cli: self.clone(),
            id: id.to_owned(),
        }
    }

    /// `state <id>`, parsed.
    ///
    /// # Panics
    ///
    /// If the command fails or prints something other than JSON.
    pub fn state(&self, id: &str) -> serde_json::Value {
        let out = self.exec(["state", id]);
        out.assert_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{out}\nstate is not JSON: {e}"))
    }
}

/// Runs `delete --force` on drop.
pub struct DeleteGuard {
    cli: Cli,
    id: String,
}

impl Drop for DeleteGuard {
    fn drop(&mut self) {
        let _ = self.cli.exec(["delete", "--force", &self.id]);
    }
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout (for a pty session, everything read from the pty).
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Output {
    /// The exit code.
    ///
    /// # Panics
    ///
    /// If the runtime itself was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{self}\nthe runtime was killed by a signal"))
    }

    /// Panics, showing the command and its output, unless it exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "expected success:\n{self}");
        self
    }

    /// Panics unless it exited nonzero and its stderr contains `needle`.
    pub fn assert_failure_mentioning(&self, needle: &str) -> &Self {
        assert!(!self.status.success(), "expected failure:\n{self}");
        assert!(
            self.stderr.contains(needle),
            "expected stderr to mention {needle:?}:\n{self}"
        );
        self
    }

    /// Stdout with the pty's `\r\n` line ends turned into `\n`.
    pub fn text(&self) -> String {
        self.stdout.replace("\r\n", "\n")
    }

    /// The lines of [`Output::text`].
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Output {
            command,
            status,
            stdout,
            stderr,
        } = self;
        write!(
            f,
            "`{command}`: {status}\n--- stdout ---\n{stdout:?}\n--- stderr ---\n{stderr}"
        )
    }
}

/// The master side of a pty, with everything read from it so far.
pub struct PtyReader {
    what: String,
    master: File,
    seen: Vec<u8>,
}

impl PtyReader {
    /// Reads from `master`; `what` names the pty in messages.
    pub fn new(master: OwnedFd, what: impl Into<String>) -> Self {
        PtyReader {
            what: what.into(),
            master: File::from(master),
            seen: Vec::new(),
        }
    }

    /// Types `bytes` into the pty.
    pub fn write_all(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.master
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.what));
    }

    /// Everything read so far.
    pub fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads until the output so far contains `needle`; `false` if every
    /// slave fd was closed first.
    ///
    /// # Panics
    ///
    /// If nothing arrives for [`HANG_GUARD`].
    pub fn read_until(&mut self, needle: &str) -> bool {
        while !self.seen().contains(needle) {
            if !self.read_some() {
                return false;
            }
        }
        true
    }

    /// Reads until every slave fd is closed; returns everything read.
    ///
    /// # Panics
    ///
    /// If nothing arrives for [`HANG_GUARD`].
    pub fn read_to_end(&mut self) -> String {
        while self.read_some() {}
        self.seen()
    }

    /// Reads what the pty has; `false` once every slave fd is closed.
    fn read_some(&mut self) -> bool {
        assert!(
            wait_readable(&self.master, HANG_GUARD),
            "{} printed nothing for {HANG_GUARD:?}; output so far: {:?}",
            self.what,
            self.seen()
        );
        let mut buf = [0u8; 4096];
        loop {
            match self.master.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.seen.extend_from_slice(&buf[..n]);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: the last slave fd was closed.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return false,
                Err(e) => panic!("read pty of {}: {e}", self.what),
            }
        }
    }
}

/// A runtime running with a pty as its stdin and stdout.
pub struct PtySession {
    command: String,
    pty: PtyReader,
    child: Child,
    stderr: OwnedFd,
}

impl PtySession {
    /// Reads from the pty until the output so far contains `needle`.
    ///
    /// # Panics
    ///
    /// If the pty closes first, or prints nothing for [`HANG_GUARD`].
    pub fn read_until(&mut self, needle: &str) {
        if !self.pty.read_until(needle) {
            let status = self.child.wait().expect("wait for the runtime");
            panic!(
                "`{}` ended ({status}) before printing {needle:?}\n--- pty ---\n{:?}\n--- stderr ---\n{}",
                self.command,
                self.pty.seen(),
                read_all(self.stderr.try_clone().expect("dup memfd")),
            );
        }
    }

    /// Reads the pty until every slave fd is closed, then waits for the
    /// runtime.
    pub fn finish(mut self) -> Output {
        // runc relays its console through a second pty whose ONLCR
        // translation races with its switch to raw mode, so a line from
        // runc sometimes ends "\r\r\n". Line endings are the terminal's,
        // not the container's behaviour: fold repeated CRs before a LF.
        let stdout = fold_crs(&self.pty.read_to_end());
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("wait for `{}`: {e}", self.command));
        Output {
            command: self.command,
            status,
            stdout,
            stderr: read_all(self.stderr),
        }
    }
}

fn memfd(name: &str) -> OwnedFd {
    rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).expect("memfd_create")
}

fn read_all(fd: OwnedFd) -> String {
    let mut f = File::from(fd);
    f.seek(SeekFrom::Start(0)).expect("seek memfd");
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).expect("read memfd");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Polls `fd` for readability; `false` if `timeout` passes first.
pub fn wait_readable(fd: impl AsFd, timeout: Duration) -> bool {
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    loop {
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) => return n > 0,
            Err(Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// A pidfd for `pid`, opened while the process is known to be alive.
///
/// # Panics
///
/// If there is no such process.
pub fn pidfd(pid: i32) -> OwnedFd {
    let p = Pid::from_raw(pid).unwrap_or_else(|| panic!("invalid pid {pid}"));
    rustix::process::pidfd_open(p, PidfdFlags::empty())
        .unwrap_or_else(|e| panic!("pidfd_open {pid}: {e}"))
}

/// Whether the process of `pidfd` has exited (zombies count), without
/// waiting.
pub fn has_exited(pidfd: &OwnedFd) -> bool {
    wait_readable(pidfd, Duration::ZERO)
}

/// Waits (up to [`HANG_GUARD`]) for the process of `pidfd` to exit.
///
/// # Panics
///
/// If it is still alive after [`HANG_GUARD`].
pub fn wait_exit(pidfd: &OwnedFd, what: &str) {
    assert!(
        wait_readable(pidfd, HANG_GUARD),
        "{what} is still running after {HANG_GUARD:?}"
    );
}

/// Asserts that the container process that had `pid` is gone: no such
/// pid, or it has exited, or the pid now belongs to a process in our own
/// pid namespace (reused by a host process; a container's init lives in
/// its own).
pub fn assert_container_pid_gone(pid: i32) {
    let Some(p) = Pid::from_raw(pid) else {
        panic!("invalid pid {pid}")
    };
    let fd = match rustix::process::pidfd_open(p, PidfdFlags::empty()) {
        Err(Errno::SRCH) => return,
        Err(e) => panic!("pidfd_open {pid}: {e}"),
        Ok(fd) => fd,
    };
    let ours = std::fs::read_link("/proc/self/ns/pid").expect("read our pid namespace");
    if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == ours) {
        return;
    }
    assert!(
        has_exited(&fd),
        "container process {pid} is still running after its runtime returned"
    );
}

/// Reads a `--pid-file`.
pub fn read_pid_file(path: &Path) -> i32 {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read pid file {path:?}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {path:?} holds {text:?}: {e}"))
}

/// Panics if anything is still mounted under `dir` on the host.
pub fn assert_no_mounts_under(dir: &Path) {
    let left = host_mounts_under(dir);
    assert!(
        left.is_empty(),
        "mounts left on the host under {dir:?}: {left:?}"
    );
}

/// A bundle: `config.json` as a JSON value plus a busybox `rootfs/`.
pub struct Bundle {
    dir: PathBuf,
    config: serde_json::Value,
}

impl Bundle {
    /// Makes `dir` with a busybox rootfs and runc's default config
    /// (`runc spec`), minus `linux.resources`. Nothing else is changed:
    /// `process.terminal` stays true and `hostname` stays "runc".
    ///
    /// # Panics
    ///
    /// If runc is not installed, or the rootfs cannot be built.
    pub fn runc_default(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
        build_busybox_rootfs(&dir.join("rootfs"))
            .unwrap_or_else(|e| panic!("build busybox rootfs in {dir:?}: {e}"));
        let out = Command::new(runc_bin())
            .arg("spec")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("run `runc spec`");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "`runc spec` in {dir:?}: {}: {stderr}",
            out.status
        );
        let mut bundle = Bundle::load(dir);
        let linux = bundle.config["linux"]
            .as_object_mut()
            .expect("runc's default config has linux");
        linux.remove("resources");
        bundle.write();
        bundle
    }

    /// Reads `dir/config.json` as it is.
    pub fn load(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        let config = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"));
        Bundle { dir, config }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The config.
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// Sets `process.args` and writes the config.
    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = serde_json::json!(args);
        self.write();
        self
    }

    /// Sets `process.terminal` and writes the config.
    pub fn set_terminal(&mut self, terminal: bool) -> &mut Self {
        self.config["process"]["terminal"] = serde_json::json!(terminal);
        self.write();
        self
    }

    /// Writes `config.json`.
    pub fn write(&self) {
        let path = self.dir.join("config.json");
        let text = serde_json::to_string_pretty(&self.config).expect("config serialises");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }
}

/// One end-to-end CLI test's world: a temp dir holding a bundle (runc's
/// default config over busybox) and separate state roots for corral and
/// runc.
pub struct CliWorld {
    /// The bundle, in `<tmp>/bundle`.
    pub bundle: Bundle,
    /// `corral --root <tmp>/corral-root`.
    pub corral: Cli,
    /// `runc --root <tmp>/runc-root`.
    pub runc: Cli,
    tmp: TempDir,
}

impl CliWorld {
    /// Makes the temp dir, the bundle and both runtimes' roots.
    pub fn new(name: &str) -> Self {
        let tmp = TempDir::new(name);
        let bundle = Bundle::runc_default(tmp.path().join("bundle"));
        let corral = Cli::corral(tmp.path().join("corral-root"));
        let runc = Cli::runc(tmp.path().join("runc-root"));
        CliWorld {
            bundle,
            corral,
            runc,
            tmp,
        }
    }

    /// The test's temp dir.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// A unique container id.
    pub fn id(&self, name: &str) -> String {
        unique_id(name)
    }

    /// Runs the bundle with `run` under a pty, cleaning up on failure, and
    /// checks the runtime left no container process and no mount behind.
    pub fn run(&self, cli: &Cli, name: &str) -> Output {
        let id = self.id(name);
        let _guard = cli.guard(&id);
        let pid_file = self.tmp().join(format!("{id}.pid"));
        let out = cli.run_pty(self.bundle.path(), &pid_file, &id);
        if pid_file.exists() {
            assert_container_pid_gone(read_pid_file(&pid_file));
        }
        assert_no_mounts_under(self.bundle.path());
        out
    }
}

/// A `--console-socket` listener: the runtime connects and sends the pty
/// master of a `terminal: true` container with `SCM_RIGHTS`.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl ConsoleSocket {
    /// Listens at `path`.
    pub fn bind(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("bind {path:?}: {e}"));
        ConsoleSocket { path, listener }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one connection and returns the fd it carries. After `create`
    /// returned its connection waits in the backlog; for `exec` this waits
    /// (up to [`HANG_GUARD`]) for the runtime to connect.
    ///
    /// # Panics
    ///
    /// If no connection comes or it carries no fd.
    pub fn recv_master(&self) -> OwnedFd {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        assert!(
            wait_readable(&self.listener, HANG_GUARD),
            "nobody connected to console socket {:?} for {HANG_GUARD:?}",
            self.path
        );
        self.listener
            .set_nonblocking(true)
            .expect("set listener nonblocking");
        let (stream, _) = self
            .listener
            .accept()
            .unwrap_or_else(|e| panic!("no connection on console socket {:?}: {e}", self.path));
        stream.set_nonblocking(false).expect("set stream blocking");
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut name = [0u8; 4096];
        rustix::net::recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .expect("recvmsg on console socket");
        for msg in control.drain() {
            let fd = match msg {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            };
            if let Some(fd) = fd {
                return fd;
            }
        }
        panic!("the console socket connection carried no fd");
    }
}

/// `"\r\r\n"` (any number of CRs before a LF) becomes `"\r\n"`.
fn fold_crs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut crs = 0;
    for c in text.chars() {
        match c {
            '\r' => crs += 1,
            '\n' => {
                if crs > 0 {
                    out.push('\r');
                }
                out.push('\n');
                crs = 0;
            }
            other => {
                out.extend(std::iter::repeat_n('\r', crs));
                crs = 0;
                out.push(other);
            }
        }
    }
    out.extend(std::iter::repeat_n('\r', crs));
    out
}
