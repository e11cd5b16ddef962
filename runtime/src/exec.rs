//! Exec: one more process in a running container ([`Container::exec`],
//! [`Runtime::exec_by_id`]), and its handle, [`ExecProcess`].
//!
//! The runtime clones a fresh `corral-init` with no new namespaces (born in
//! the target's v2 cgroup, moved into its v1 cgroups before it is told
//! anything) and sends it an exec request with the target's pidfd. The
//! init joins every namespace of the target with one `setns(pidfd, ..)`,
//! enters its root, and clones the process with `CLONE_PARENT`, so that
//! this runtime is its parent and awaits it by pidfd like any container.
//! The sequence and its sync points are in docs/protocol.md, "Exec
//! sequence". This module decides order and owns the handles; the kernel
//! work is in `sys` (the clone), `cgroup_join` and `corral-init`.

use crate::seccomp_notify::{ExecSeccomp, ProcessState};
use std::ffi::c_char;
use std::future::{Future, IntoFuture};
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;

use corral_protocol::{ExecSpec, ToParent};
use oci_spec::runtime::Process;
use rustix::process::Pid;
use tracing::{debug, info};

use crate::channel::InitSocket;
use crate::console::Console;
use crate::container::{Container, emit, message_kind, peer_gone, protocol_err};
use crate::error::{Error, Result};
use crate::pidfd::PidFd;
use crate::runtime::Runtime;
use crate::state::Status;
use crate::stdio::{self, ContainerOutput, ContainerStdin, Stdio};
use crate::sys::{self, ChildPlan};
use crate::{ExitStatus, cgroup_join};

/// The namespace types a process can join, with their `/proc/<pid>/ns`
/// names. `user` first: it is what the others are owned by.
const NAMESPACES: [(&str, i32); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("mnt", libc::CLONE_NEWNS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("time", libc::CLONE_NEWTIME),
    ("uts", libc::CLONE_NEWUTS),
];

impl Container {
    /// Starts `process` (an OCI `process` object) in this container, which
    /// must be created or running. `.await` the returned [`Exec`] for an
    /// [`ExecProcess`], already running.
    pub fn exec(&self, process: Process) -> Exec {
        let target = match self.process().try_wait() {
            Ok(None) => rustix::io::fcntl_dupfd_cloexec(self.process().as_fd(), 0)
                .map(|fd| (fd, self.pid()))
                .map_err(|e| Error::sys("dup pidfd", e)),
            Ok(Some(_)) => Err(stopped(self.id())),
            Err(e) => Err(Error::sys("waitid on pidfd", e)),
        };
        Exec::new(
            self.runtime().clone(),
            self.id().to_owned(),
            target,
            process,
        )
        .with_seccomp(self.seccomp.clone())
    }
}

impl Runtime {
    /// Starts `process` in container `id` of the state dir (which another
    /// process may have created: `corral exec`). The recorded pid is
    /// trusted only with its start time (see [`StoredState`](crate::StoredState)).
    pub fn exec_by_id(&self, id: &str, process: Process) -> Exec {
        let mut seccomp = None;
        let target = self.state_dir().and_then(|dir| {
            let stored = dir.read(id)?;
            seccomp = stored.seccomp.clone().map(|s| {
                Box::new(ExecSeccomp {
                    stored: s,
                    bundle: stored.bundle.clone(),
                    annotations: stored.annotations.clone(),
                })
            });
            match stored.status() {
                Status::Stopped => return Err(stopped(id)),
                // Its init would join a frozen cgroup and hang there.
                Status::Paused => {
                    return Err(Error::State {
                        id: id.to_owned(),
                        state: Status::Paused.name(),
                        operation: "exec",
                    });
                }
                Status::Created | Status::Running => {}
            }
            let fd = stored.open_pidfd()?.ok_or_else(|| stopped(id))?;
            Ok((fd, stored.pid))
        });
        Exec::new(self.clone(), id.to_owned(), target, process).with_seccomp(seccomp)
    }
}

fn stopped(id: &str) -> Error {
    Error::State {
        id: id.to_owned(),
        state: Status::Stopped.name(),
        operation: "exec",
    }
}

/// A process being started in a running container; configure stdio on it,
/// then `.await` it for an [`ExecProcess`].
///
/// # Cancel safety
/// Dropping the future before it completes kills and reaps whatever it
/// had started (the exec-mode init, and the process once it exists).
#[must_use = "an Exec does nothing until awaited"]
#[derive(Debug)]
pub struct Exec {
    runtime: Runtime,
    id: String,
    target: Result<(OwnedFd, i32)>,
    process: Process,
    stdio: [Stdio; 3],
    detached: bool,
    /// The container's seccomp filter, loaded into the process too.
    seccomp: Option<Box<ExecSeccomp>>,
}

impl Exec {
    fn new(runtime: Runtime, id: String, target: Result<(OwnedFd, i32)>, process: Process) -> Self {
        Exec {
            runtime,
            id,
            target,
            process,
            stdio: [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
            detached: false,
            seccomp: None,
        }
    }

    fn with_seccomp(mut self, seccomp: Option<Box<ExecSeccomp>>) -> Self {
        self.seccomp = seccomp;
        self
    }

    /// The process's stdin (fd 0). Ignored with a terminal.
    pub fn stdin(mut self, stdio: Stdio) -> Self {
        self.stdio[0] = stdio;
        self
    }

    /// The process's stdout (fd 1). Ignored with a terminal.
    pub fn stdout(mut self, stdio: Stdio) -> Self {
        self.stdio[1] = stdio;
        self
    }

    /// The process's stderr (fd 2). Ignored with a terminal.
    pub fn stderr(mut self, stdio: Stdio) -> Self {
        self.stdio[2] = stdio;
        self
    }

    /// Whether the process outlives this one: no parent-death signal. Use
    /// with [`ExecProcess::detach`].
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }
}

impl IntoFuture for Exec {
    type Output = Result<ExecProcess>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<ExecProcess>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(spawn(self))
    }
}

/// A process started in a container by [`Container::exec`]: the same
/// stdio, wait and kill API as a [`Container`].
///
/// # Drop
/// Dropping a handle whose process still runs kills it (`SIGKILL` through
/// the pidfd) and reaps it in a background task (or, outside a tokio
/// runtime, with a short blocking wait), unless [`ExecProcess::detach`]
/// was called.
#[derive(Debug)]
pub struct ExecProcess {
    container_id: String,
    process: Option<PidFd>,
    stdin: Option<ContainerStdin>,
    stdout: Option<ContainerOutput>,
    stderr: Option<ContainerOutput>,
    console: Option<Console>,
}

impl ExecProcess {
    /// The container's id.
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Host pid of the process.
    pub fn pid(&self) -> i32 {
        self.process().pid().as_raw_nonzero().get()
    }

    /// The write end of a piped stdin, once.
    pub fn take_stdin(&mut self) -> Option<ContainerStdin> {
        self.stdin.take()
    }

    /// The read end of a piped stdout, once.
    pub fn take_stdout(&mut self) -> Option<ContainerOutput> {
        self.stdout.take()
    }

    /// The read end of a piped stderr, once.
    pub fn take_stderr(&mut self) -> Option<ContainerOutput> {
        self.stderr.take()
    }

    /// The console of a process with `terminal: true`, once.
    pub fn take_console(&mut self) -> Option<Console> {
        self.console.take()
    }

    fn process(&self) -> &PidFd {
        self.process
            .as_ref()
            .expect("a live handle has its process")
    }

    /// Waits for the process to exit, through its pidfd.
    ///
    /// # Cancel safety
    /// Cancel-safe, and may be awaited from several tasks at once: all see
    /// the same status.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let status = self
            .process()
            .wait()
            .await
            .map_err(|e| Error::sys("waitid on pidfd", e))?;
        info!(container_id = %self.container_id, pid = self.pid(), %status, "exec exited");
        Ok(status)
    }

    /// Sends `signal` to the process through its pidfd.
    pub fn kill(&self, signal: i32) -> Result<()> {
        self.process().signal(signal).map_err(|e| {
            Error::sys(
                format!(
                    "pidfd_send_signal {signal} to exec in {:?}",
                    self.container_id
                ),
                e,
            )
        })
    }

    /// Lets the process outlive this handle: no kill on drop (pair with
    /// [`Exec::detached`]). Nobody reaps it while this process lives.
    pub fn detach(mut self) {
        self.process = None;
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            crate::reaper::kill_and_reap(process, None);
        }
    }
}

/// Kills and reaps what a failed or cancelled exec started.
#[derive(Default)]
struct Abort {
    first: Option<PidFd>,
    child: Option<PidFd>,
}

impl Abort {
    async fn abort(&mut self) {
        for process in [self.first.take(), self.child.take()].into_iter().flatten() {
            let _ = process.signal(libc::SIGKILL);
            let _ = process.wait().await;
        }
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        for process in [self.first.take(), self.child.take()].into_iter().flatten() {
            crate::reaper::kill_and_reap(process, None);
        }
    }
}

#[tracing::instrument(skip_all, fields(container_id = %exec.id))]
async fn spawn(exec: Exec) -> Result<ExecProcess> {
    let Exec {
        runtime,
        id,
        target,
        process,
        stdio: [s0, s1, s2],
        detached,
        seccomp,
    } = exec;
    let (target, target_pid) = target?;
    let spec = ExecSpec {
        container_id: id.clone(),
        target_pid,
        namespaces: namespaces_to_join(target_pid)?,
        process: crate::plan::process_spec(&process)?,
        kill_on_parent_death: !detached,
        seccomp: seccomp.as_ref().map(|s| s.stored.program.clone()),
    };
    let cgroups = cgroup_join::Target::of(target_pid, runtime.layout())?;
    let prepared = [
        stdio::prepare(s0, 0)?,
        stdio::prepare(s1, 1)?,
        stdio::prepare(s2, 2)?,
    ];
    let (parent_end, child_end) =
        corral_protocol::socketpair().map_err(|e| protocol_err(&id, e))?;
    // exec sync 0: a fresh corral-init, in the target's cgroups.
    let initial = initial_affinity(spec.process.exec_cpu_affinity.as_ref());
    let spawned = clone_exec_init(
        &runtime,
        &prepared,
        &child_end,
        &cgroups,
        initial.as_ref(),
        detached,
    )?;
    drop(child_end);
    let [p0, p1, p2] = prepared;
    let mut guard = Abort::default();
    guard.first =
        Some(PidFd::new(spawned.pidfd, spawned.pid).map_err(|e| Error::sys("register pidfd", e))?);
    debug!(pid = spawned.pid.as_raw_nonzero().get(), "cloned exec init");
    let result = async {
        let socket =
            InitSocket::new(parent_end).map_err(|e| Error::sys("register init socket", e))?;
        handshake(&id, &socket, &target, &spec, seccomp.as_deref(), &mut guard).await
    }
    .await;
    let console = match result {
        Ok(console) => console,
        Err(e) => {
            guard.abort().await;
            return Err(e);
        }
    };
    let process = guard
        .child
        .take()
        .expect("a successful exec has its process");
    drop(guard);
    // Registration only fails without a reactor, and we are inside one.
    let reg = "register a pipe with the running reactor";
    let mut handle = ExecProcess {
        container_id: id,
        process: Some(process),
        stdin: None,
        stdout: None,
        stderr: None,
        console: console.map(|fd| Console::new(fd).expect(reg)),
    };
    for (index, parent) in [p0.parent, p1.parent, p2.parent].into_iter().enumerate() {
        let Some(parent) = parent else { continue };
        match (
            stdio::attach(parent, runtime.stdio_engine()).expect(reg),
            index,
        ) {
            (stdio::Attached::Stdin(w), _) => handle.stdin = Some(w),
            (stdio::Attached::Output(r), 1) => handle.stdout = Some(r),
            (stdio::Attached::Output(r), _) => handle.stderr = Some(r),
            // A file copy of an exec'd process runs to EOF on its own;
            // nothing awaits its count.
            (stdio::Attached::Copy(_), _) => {}
        }
    }
    info!(pid = handle.pid(), "exec started");
    Ok(handle)
}

/// `process.execCPUAffinity.initial` as the mask the cloned child sets on
/// itself first of all, before it writes itself into the container's v1
/// cgroups and before it is told what to run: the spec's "before the
/// transition to the container's cgroup" (on v2 it is born in the cgroup
/// by `CLONE_INTO_CGROUP`, so that is as early as corral can). The init's
/// child, the process, inherits the mask until the init sets `final`
/// (Step `cpu_affinity`). The CPUs were checked against the host's at
/// planning.
fn initial_affinity(affinity: Option<&corral_protocol::CpuAffinity>) -> Option<libc::cpu_set_t> {
    let cpus = affinity.and_then(|a| a.initial.as_ref())?;
    Some(sys::cpu_set(cpus.iter().map(|&c| c as usize)))
}

/// `clone3` with no new namespaces, then exec of `corral-init` (exec
/// sync 0). Sync, so that the raw argv pointers never cross an await.
fn clone_exec_init(
    runtime: &Runtime,
    prepared: &[stdio::Prepared; 3],
    child_end: &OwnedFd,
    cgroups: &cgroup_join::Target,
    initial_affinity: Option<&libc::cpu_set_t>,
    detached: bool,
) -> Result<sys::Spawned> {
    let binary = runtime.init_binary()?;
    // argv[1] names the init socket's fd, as for a container's init.
    let argv: [*const c_char; 3] = [c"corral-init".as_ptr(), c"3".as_ptr(), std::ptr::null()];
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let tasks = cgroups.v1_tasks();
    let plan = ChildPlan {
        kill_on_parent_death: !detached,
        cgroup: cgroups.clone_into(),
        cgroup_tasks: &tasks,
        initial_affinity,
        ..ChildPlan::plain(
            stdio::child_fds(prepared),
            child_end.as_fd(),
            binary.exec(),
            &argv,
            &envp,
        )
    };
    sys::spawn_init(0, &plan).map_err(|e| Error::sys("clone3", e))
}

/// Exec sync 1–4 on the runtime's side: send the request, collect the
/// process's pidfd and console, until EOF (the exec succeeded).
async fn handshake(
    id: &str,
    socket: &InitSocket,
    target: &OwnedFd,
    spec: &ExecSpec,
    seccomp: Option<&ExecSeccomp>,
    guard: &mut Abort,
) -> Result<Option<OwnedFd>> {
    let listener = seccomp.and_then(|s| s.listener().map(|l| (s, l)));
    // exec sync 1: the request, with the target's pidfd.
    if let Err(e) = socket.send_exec(spec, target.as_fd()).await {
        if !peer_gone(&e) {
            return Err(protocol_err(id, e));
        }
    }
    let mut console = None;
    loop {
        match socket.recv().await {
            // exec sync 2: the process exists, a child of ours; the first
            // init exits right after sending this.
            Ok((ToParent::ExecPid(p), Some(fd))) if guard.child.is_none() => {
                let pid = Pid::from_raw(p.pid).ok_or_else(|| {
                    let kind = corral_protocol::Kind::ExecPid;
                    protocol_err(id, corral_protocol::Error::Unexpected { kind })
                })?;
                guard.child =
                    Some(PidFd::new(fd, pid).map_err(|e| Error::sys("register pidfd", e))?);
                if let Some(first) = guard.first.take() {
                    first
                        .wait()
                        .await
                        .map_err(|e| Error::sys("wait for exec init", e))?;
                }
            }
            // exec sync 3: the pty master, when process.terminal.
            Ok((ToParent::Console, fd)) if guard.child.is_some() => console = fd,
            // The process's own seccomp listener fd, for the agent.
            Ok((ToParent::SeccompListener, Some(fd)))
                if guard.child.is_some() && listener.is_some() =>
            {
                let (s, l) = listener.as_ref().expect("checked by the guard");
                let child = guard.child.as_ref().expect("checked by the guard");
                let state = ProcessState {
                    id,
                    pid: child.pid().as_raw_nonzero().get(),
                    container_pid: spec.target_pid,
                    status: "running",
                    bundle: &s.bundle,
                    annotations: &s.annotations,
                };
                crate::seccomp_notify::deliver(l, fd, &state).await?;
            }
            Ok((ToParent::Log(record), _)) => emit(&record),
            Ok((ToParent::Error(source), _)) => {
                return Err(Error::Init {
                    container_id: id.to_owned(),
                    source,
                });
            }
            // exec sync 4: EOF after the pid is the exec of the workload.
            Err(e) if peer_gone(&e) && guard.child.is_some() => return Ok(console),
            Err(e) if peer_gone(&e) => {
                let first = guard.first.as_ref().expect("the exec init is in the guard");
                let status = first
                    .wait()
                    .await
                    .map_err(|e| Error::sys("wait for exec init", e))?;
                return Err(Error::InitDied {
                    container_id: id.to_owned(),
                    status,
                });
            }
            Ok((other, _)) => {
                let kind = message_kind(&other);
                return Err(protocol_err(
                    id,
                    corral_protocol::Error::Unexpected { kind },
                ));
            }
            Err(e) => return Err(protocol_err(id, e)),
        }
    }
}

/// `CLONE_NEW*` bits of every namespace of `pid` that is not ours.
fn namespaces_to_join(pid: i32) -> Result<u64> {
    let link = |who: &str, name: &str| std::fs::read_link(format!("/proc/{who}/ns/{name}")).ok();
    let mut flags = 0u64;
    for (name, flag) in NAMESPACES {
        let own = link("self", name);
        let theirs = link(&pid.to_string(), name);
        if theirs.is_none() && own.is_some() {
            return Err(Error::sys(
                format!("read /proc/{pid}/ns/{name}"),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        if theirs != own {
            flags |= flag as u32 as u64;
        }
    }
    Ok(flags)
}
