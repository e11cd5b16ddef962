//! Exec into running containers: through the library
//! ([`corral::Container::exec`]) and the command line (`corral exec`).
//! The exec'd process joins every namespace and the cgroups of the
//! container's process, is a child of the runtime (awaited by pidfd), and
//! leaves nothing behind.

use std::path::{Path, PathBuf};

use corral::Stdio;
use corral::oci_spec::runtime::{Process, ProcessBuilder};
use corral_tests::*;
use tokio::io::AsyncReadExt;

/// An OCI process running `args`, as root, in `/`.
fn process(args: &[&str]) -> Process {
    ProcessBuilder::default()
        .args(args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        .env(vec!["PATH=/bin".to_string()])
        .cwd("/")
        .build()
        .unwrap()
}

/// A started container running `/probe pause`.
async fn paused(rt: &corral::Runtime, name: &str) -> corral::Container {
    let mut c = rt
        .create(unique_id(name), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    c
}

/// Runs `args` in `c` with piped stdout; returns status and output.
async fn exec_capture(c: &corral::Container, args: &[&str]) -> (corral::ExitStatus, String) {
    let mut p = c.exec(process(args)).stdout(Stdio::piped()).await.unwrap();
    let mut out = String::new();
    p.take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    (p.wait().await.unwrap(), out)
}

/// Test cgroups, removed on drop (after the processes in them are gone).
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    /// A new cgroup in each mounted hierarchy this test can use (v1 `pids`,
    /// a hybrid host's v2 `unified`, or a pure v2 root), holding `pid`.
    fn holding(pid: i32) -> Cgroups {
        let name = unique_id("corral-test-exec");
        let mut dirs = Vec::new();
        for base in [
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ] {
            if !Path::new(base).join("cgroup.procs").exists() {
                continue;
            }
            let dir = Path::new(base).join(&name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
            dirs.push(dir);
        }
        assert!(!dirs.is_empty(), "no cgroup hierarchy to test with");
        Cgroups(dirs)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[tokio::test]
async fn exec_joins_every_namespace_and_the_cgroups_of_the_target() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let rt = runtime();
    let c = paused(&rt, "exec-ns").await;
    let cgroups = Cgroups::holding(c.pid());
    let (status, out) = exec_capture(&c, &["/probe", "info"]).await;
    assert!(status.success(), "{status}: {out}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        let target = std::fs::read_link(format!("/proc/{}/ns/{ns}", c.pid())).unwrap();
        assert_eq!(
            info["ns"][ns],
            target.to_str().unwrap(),
            "namespace {ns} of the exec'd process"
        );
    }
    assert_ne!(
        info["pid"], 1,
        "the exec'd process is not the container's pid 1"
    );
    assert_eq!(
        info["ppid"], 0,
        "its parent (the runtime) is outside the pid namespace"
    );
    let (status, cgroup) = exec_capture(&c, &["/probe", "read", "/proc/self/cgroup"]).await;
    assert!(status.success(), "{status}");
    let target = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert_eq!(cgroup, target, "cgroups of the exec'd process");
    for dir in &cgroups.0 {
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(
            target.contains(name),
            "the container is in {dir:?}: {target}"
        );
    }
    c.kill(libc::SIGKILL).unwrap();
    c.wait().await.unwrap();
    drop(cgroups);
}

#[tokio::test]
async fn exec_with_a_tty_gets_a_console_of_the_containers_devpts() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let rt = runtime();
    let c = paused(&rt, "exec-tty").await;
    let mut proc = process(&["/probe", "isatty"]);
    proc.set_terminal(Some(true));
    let mut p = c.exec(proc).await.unwrap();
    let mut console = p.take_console().expect("a terminal exec has a console");
    let mut out = String::new();
    console.read_to_string(&mut out).await.unwrap();
    assert!(p.wait().await.unwrap().success());
    assert_eq!(out, "[true,true,true]\r\n");
}

#[tokio::test]
async fn exec_exit_status_and_signals_go_through_its_pidfd() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let rt = runtime();
    let c = paused(&rt, "exec-status").await;
    let p = c.exec(process(&["/probe", "exit", "7"])).await.unwrap();
    assert_eq!(p.wait().await.unwrap().code(), Some(7));
    assert!(p.kill(libc::SIGTERM).is_err(), "no signal after the reap");
    let p = c.exec(process(&["/probe", "pause"])).await.unwrap();
    p.kill(libc::SIGTERM).unwrap();
    let status = p.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(status.shell_code(), 143);
    // The container itself is untouched.
    assert!(
        c.exec(process(&["/probe", "exit", "0"]))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn two_hundred_execs_leave_no_fds_or_zombies() {
    require_root();
    // Shared: this process's child list, which other container tests change.
    let _children = CHILDREN.lock().await;
    let rt = runtime();
    let c = paused(&rt, "exec-200").await;
    // Warm up the sealed init and the reactor's registrations.
    c.exec(process(&["/probe", "exit", "0"]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let (fds, children) = (open_fds(), child_count());
    for i in 0..200 {
        let p = c
            .exec(process(&["/probe", "exit", &(i % 7).to_string()]))
            .stdout(Stdio::null())
            .await
            .unwrap();
        assert_eq!(p.wait().await.unwrap().code(), Some(i % 7));
    }
    assert_eq!(open_fds(), fds, "fds leaked by 200 execs");
    assert_eq!(child_count(), children, "children left by 200 execs");
    c.kill(libc::SIGKILL).unwrap();
    c.wait().await.unwrap();
}

#[tokio::test]
async fn exec_of_a_missing_executable_reports_step_resolve_and_the_path() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let rt = runtime();
    let c = paused(&rt, "exec-missing").await;
    let err = c.exec(process(&["/no/such/tool"])).await.unwrap_err();
    let init = err
        .init_error()
        .unwrap_or_else(|| panic!("not an init error: {err}"));
    assert_eq!(init.step, corral::Step::Resolve, "{err}");
    assert_eq!(init.errno, Some(libc::ENOENT), "{err}");
    assert_eq!(init.path.as_ref().unwrap().as_bytes(), b"/no/such/tool");
}

#[tokio::test]
async fn exec_into_a_stopped_or_unknown_container_is_refused() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let rt = runtime();
    let c = paused(&rt, "exec-stopped").await;
    c.kill(libc::SIGKILL).unwrap();
    c.wait().await.unwrap();
    let err = c.exec(process(&["/probe"])).await.unwrap_err();
    assert!(
        matches!(
            err,
            corral::Error::State {
                state: "stopped",
                ..
            }
        ),
        "{err}"
    );
    let tmp = TempDir::new("exec-unknown");
    let rt = corral::Runtime::builder()
        .state_dir(tmp.path())
        .build()
        .unwrap();
    let err = rt
        .exec_by_id("no-such-container", process(&["/probe"]))
        .await
        .unwrap_err();
    assert!(matches!(err, corral::Error::NotFound { .. }), "{err}");
}

// ---------------------------------------------------------------------
// `corral exec`

mod cli {
    use std::ffi::OsStr;
    use std::process::{Command, Stdio};

    use corral_tests::cli::*;
    use corral_tests::require_root;

    /// A `sleep 100` busybox container (terminal false), created and
    /// started with `corral`; returns its pid.
    fn create_and_start(w: &CliWorld, id: &str) -> i32 {
        w.corral
            .exec([
                OsStr::new("create"),
                OsStr::new("--bundle"),
                w.bundle.path().as_os_str(),
                OsStr::new(id),
            ])
            .assert_success();
        w.corral.exec(["start", id]).assert_success();
        let state = w.corral.state(id);
        assert_eq!(state["status"], "running", "{state}");
        i32::try_from(state["pid"].as_i64().unwrap()).unwrap()
    }

    fn sleeper_world(name: &str) -> CliWorld {
        let mut w = CliWorld::new(name);
        w.bundle.set_args(&["sleep", "100"]).set_terminal(false);
        w
    }

    #[test]
    fn corral_exec_joins_pid_mnt_uts_ipc_is_not_pid_1_and_returns_its_exit_code() {
        require_root();
        let _serial = corral_tests::CHILDREN.blocking_lock();
        let w = sleeper_world("cli-exec");
        let id = w.id("cli-exec");
        let _guard = w.corral.guard(&id);
        let pid = create_and_start(&w, &id);
        let script =
            "echo $$; for n in pid mnt uts ipc; do readlink /proc/self/ns/$n; done; exit 7";
        let out = w.corral.exec(["exec", &id, "sh", "-c", script]);
        assert_eq!(out.code(), 7, "{out}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert_ne!(lines[0], "1", "the exec'd shell is not pid 1: {out}");
        for (line, ns) in lines[1..].iter().zip(["pid", "mnt", "uts", "ipc"]) {
            let target = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
            assert_eq!(*line, target.to_str().unwrap(), "{ns}: {out}");
        }
        let missing = w.corral.exec(["exec", &id, "no-such-tool"]);
        missing.assert_failure_mentioning("no-such-tool");
        w.corral.exec(["delete", "--force", &id]).assert_success();
        w.corral
            .exec(["exec", &id, "true"])
            .assert_failure_mentioning(&id);
    }

    /// `exec --tty --console-socket`: the master reaches the listener, and
    /// typing into it reaches the process and back.
    #[test]
    fn corral_exec_tty_sends_a_working_master_to_the_console_socket() {
        require_root();
        let _serial = corral_tests::CHILDREN.blocking_lock();
        let w = sleeper_world("cli-exec-tty");
        let id = w.id("cli-exec-tty");
        let _guard = w.corral.guard(&id);
        create_and_start(&w, &id);
        let socket = ConsoleSocket::bind(w.tmp().join("exec.sock"));
        let mut child = Command::new(corral_bin())
            .arg("--root")
            .arg(w.corral.root())
            .args(["exec", "--tty", "--console-socket"])
            .arg(socket.path())
            .args([
                &id,
                "sh",
                "-c",
                "[ -t 0 ] && echo ready; read x; echo got-$x; exit 4",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut pty = PtyReader::new(socket.recv_master(), "exec console");
        assert!(pty.read_until("ready"), "{}", pty.seen());
        pty.write_all(b"abc\n");
        assert!(pty.read_until("got-abc"), "{}", pty.seen());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(4), "{}", pty.seen());
    }
}
