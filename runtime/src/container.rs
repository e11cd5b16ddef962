//! [`Container`]: the handle to one container this runtime created, and
//! the start-up sequence (`docs/protocol.md`) on the parent's side.
//!
//! This module decides order and state; the kernel work is in `sys` (the
//! clone) and in `corral-init` (everything inside the namespaces).

use std::ffi::c_char;
use std::os::fd::{AsFd, OwnedFd};

use corral_protocol::{LogLevel, LogRecord, StartVia, ToParent};
use tracing::{debug, info};

use crate::cgroups::CgroupPaths;
use crate::cgroups::tree::Entry;
use crate::channel::InitSocket;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::hooks::{HookContext, Kind as HookKind};
use crate::pidfd::PidFd;
use crate::runtime::{CreateOptions, Runtime};
use crate::state::{StoredState, proc_stat, rfc3339_now};
use crate::stdio::{self, ContainerOutput, ContainerStdin};
use crate::sys::{self, ChildPlan, InitExec};
use crate::{ExitStatus, Spec, plan};

/// The fd number the init socket has inside the init (named in its argv).
const INIT_SOCKET_FD: i32 = 3;

/// A container created by this process.
///
/// # Drop
/// Dropping a handle whose process still runs kills it (`SIGKILL` through
/// the pidfd) and reaps it in a background task (or, outside a tokio
/// runtime, with a short blocking wait), unless [`Container::detach`] was
/// called. The state dir, if any, is removed only by [`Container::delete`].
#[derive(Debug)]
pub struct Container {
    id: String,
    runtime: Runtime,
    process: Option<PidFd>,
    socket: Option<InitSocket>,
    start_via: StartVia,
    started: bool,
    stdin: Option<ContainerStdin>,
    stdout: Option<ContainerOutput>,
    stderr: Option<ContainerOutput>,
    console: Option<Console>,
    /// File copies of stdout and stderr still to report EOF.
    copies: Vec<stdio::CopyDone>,
    stored: Option<StoredState>,
    cgroup: Option<CgroupPaths>,
    /// The config's hooks, for `poststart` and `poststop`.
    hooks: Option<Box<HookContext>>,
}

impl Container {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Host pid of the container's process (its pid 1).
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

    /// The console (pty master) of a container whose process has a
    /// terminal, once.
    pub fn take_console(&mut self) -> Option<Console> {
        self.console.take()
    }

    /// Waits until every [`Stdio::file`](crate::Stdio::file) copy of this
    /// container reached EOF (every writer in the container closed it)
    /// and all its bytes are in the file; returns the bytes copied.
    ///
    /// Exit does not cut a copy short: output still in the pipe when the
    /// process exits is copied before this returns.
    ///
    /// # Cancel safety
    /// Not cancel-safe: a copy that finished while this was cancelled is
    /// not reported again (the copies themselves go on).
    pub async fn stdio_done(&mut self) -> Result<u64> {
        let mut total = 0;
        for done in self.copies.drain(..) {
            let copied = done
                .await
                .map_err(|_| Error::sys("copy output", std::io::Error::other("copy abandoned")))?
                .map_err(|e| Error::sys("copy output to file", e))?;
            total += copied;
        }
        Ok(total)
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub(crate) fn process(&self) -> &PidFd {
        self.process
            .as_ref()
            .expect("a live handle has its process")
    }

    /// Releases the process: the init execs the workload (sync 4–5).
    ///
    /// # Cancel safety
    /// Not cancel-safe: if dropped after the start message went out, the
    /// process may be running while the handle still says created.
    #[tracing::instrument(skip_all, fields(container_id = %self.id))]
    pub async fn start(&mut self) -> Result<()> {
        self.start_inner(None).await
    }

    /// Like [`Container::start`], but the process runs `args` (resolved
    /// through `PATH`) and, when given, `env`, instead of the spec's: how
    /// a warm pool's container takes a job.
    ///
    /// # Cancel safety
    /// As [`Container::start`].
    #[tracing::instrument(skip_all, fields(container_id = %self.id))]
    pub async fn start_with<I, S>(&mut self, args: I, env: Option<Vec<String>>) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let raw = |s: &str| corral_protocol::RawPath::from(s);
        let takeover = corral_protocol::ProcessOverride {
            args: args.into_iter().map(|a| raw(a.as_ref())).collect(),
            env: env.map(|e| e.iter().map(|s| raw(s)).collect()),
        };
        if takeover
            .args
            .first()
            .is_none_or(|a| a.as_bytes().is_empty())
        {
            return Err(Error::invalid("process.args", "empty: nothing to run"));
        }
        if self.start_via == StartVia::Fifo {
            return Err(Error::unsupported(
                "start_with",
                "a FIFO-started container runs its spec's process",
            ));
        }
        self.start_inner(Some(takeover)).await
    }

    async fn start_inner(
        &mut self,
        takeover: Option<corral_protocol::ProcessOverride>,
    ) -> Result<()> {
        if self.started {
            return Err(self.state_error("start"));
        }
        match self.start_via {
            StartVia::Socket => {
                if let Err(e) = self.start_by_socket(takeover.as_ref()).await {
                    return Err(self.fail_start(e).await);
                }
            }
            StartVia::Fifo => {
                // sync 4 (FIFO mode): opening the FIFO for reading releases
                // the init; nobody observes sync 5 on this path.
                let state = self.runtime.state_dir()?;
                crate::stored::release_fifo(&state.dir(&self.id), self.process().as_fd()).await?;
            }
        }
        self.started = true;
        self.socket = None;
        if let Some(stored) = &mut self.stored {
            stored.started = true;
            self.runtime.state_dir()?.write(stored)?;
        }
        info!(pid = self.pid(), "started");
        if let Some(ctx) = &self.hooks {
            ctx.run_logged(HookKind::Poststart, &self.id, "running", self.pid())
                .await;
        }
        Ok(())
    }

    /// A `startContainer` hook failed: the init has exited; as the runtime
    /// spec says, the container is stopped and deleted (cgroup, state dir,
    /// `poststop`), and the handle reports `stopped`.
    async fn fail_start(&mut self, error: Error) -> Error {
        let hook_failed = error
            .init_error()
            .is_some_and(|e| e.step == corral_protocol::Step::Hooks);
        if hook_failed {
            let _ = self.remove_cgroup().await;
            let _ = self.remove_state();
            self.run_poststop().await;
        }
        error
    }

    async fn run_poststop(&mut self) {
        if let Some(ctx) = self.hooks.take() {
            ctx.run_logged(HookKind::Poststop, &self.id, "stopped", self.pid())
                .await;
        }
    }

    async fn start_by_socket(
        &mut self,
        takeover: Option<&corral_protocol::ProcessOverride>,
    ) -> Result<()> {
        let socket = self
            .socket
            .as_ref()
            .expect("a created container keeps its init socket");
        // sync 4: Start.
        socket
            .send_start(takeover)
            .await
            .map_err(|e| protocol_err(&self.id, e))?;
        loop {
            match socket.recv().await {
                // sync 5: EOF, the close-on-exec socket went with the exec.
                Err(corral_protocol::Error::Closed) => return Ok(()),
                Ok((ToParent::Log(record), _)) => emit(&record),
                // sync 5 failed: the init reports Error{step: exec} and exits.
                Ok((ToParent::Error(source), _)) => {
                    self.process()
                        .wait()
                        .await
                        .map_err(|e| Error::sys("wait for init", e))?;
                    return Err(Error::Init {
                        container_id: self.id.clone(),
                        source,
                    });
                }
                Ok((other, _)) => {
                    let kind = message_kind(&other);
                    return Err(protocol_err(
                        &self.id,
                        corral_protocol::Error::Unexpected { kind },
                    ));
                }
                Err(e) => return Err(protocol_err(&self.id, e)),
            }
        }
    }

    /// Waits for the container's process to exit.
    ///
    /// # Cancel safety
    /// Cancel-safe, and may be awaited from several tasks at once (through
    /// a shared reference): all see the same status.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let status = self
            .process()
            .wait()
            .await
            .map_err(|e| Error::sys("waitid on pidfd", e))?;
        let oom = self
            .cgroup
            .as_ref()
            .and_then(crate::cgroups::stats::oom_kills)
            .is_some_and(|n| n > 0);
        let status = status.with_oom_killed(oom);
        info!(container_id = %self.id, %status, "exited");
        Ok(status)
    }

    /// Sends `signal` to the container's process through its pidfd.
    pub fn kill(&self, signal: i32) -> Result<()> {
        self.process().signal(signal).map_err(|e| {
            Error::sys(
                format!("pidfd_send_signal {signal} to container {:?}", self.id),
                e,
            )
        })?;
        if let Some(cg) = &self.cgroup {
            crate::cgroups::thaw_after_kill(cg, signal);
        }
        Ok(())
    }

    /// Removes what `create` made (the state dir, if any). The process must
    /// have exited and been waited for; see [`Container::force_delete`].
    pub async fn delete(mut self) -> Result<()> {
        if self
            .process()
            .try_wait()
            .map_err(|e| Error::sys("waitid on pidfd", e))?
            .is_none()
        {
            return Err(self.state_error("delete"));
        }
        self.remove_cgroup().await?;
        self.remove_state()?;
        self.run_poststop().await;
        Ok(())
    }

    /// Kills the process if it still runs, reaps it, then deletes.
    pub async fn force_delete(mut self) -> Result<()> {
        let _ = self.kill(libc::SIGKILL);
        self.process()
            .wait()
            .await
            .map_err(|e| Error::sys("waitid on pidfd", e))?;
        self.remove_cgroup().await?;
        self.remove_state()?;
        self.run_poststop().await;
        Ok(())
    }

    /// Lets the process outlive this handle (the command line's `create`):
    /// no kill on drop and no parent-death signal was set. Its state dir
    /// stays for later commands.
    pub fn detach(mut self) {
        self.process = None;
        self.cgroup = None;
    }

    /// Removes the cgroup once its last process has left (leftovers are
    /// killed first).
    async fn remove_cgroup(&mut self) -> Result<()> {
        if let Some(cg) = &self.cgroup {
            crate::cgroups::tree::remove(cg).await?;
        }
        self.cgroup = None;
        Ok(())
    }

    /// The container's cgroup, if it has one.
    pub fn cgroup(&self) -> Option<&CgroupPaths> {
        self.cgroup.as_ref()
    }

    fn cgroup_or_err(&self) -> Result<&CgroupPaths> {
        self.cgroup
            .as_ref()
            .ok_or_else(|| Error::unsupported("linux.cgroupsPath", "this container has no cgroup"))
    }

    /// Freezes every process of the container; returns once all are
    /// frozen (v2: `cgroup.events`; v1: see `docs/architecture.md`).
    ///
    /// # Cancel safety
    /// Not cancel-safe: a cancelled pause may leave the container frozen;
    /// [`Container::resume`] thaws it.
    pub async fn pause(&self) -> Result<()> {
        crate::cgroups::freezer::freeze(self.cgroup_or_err()?).await
    }

    /// Thaws a paused container.
    ///
    /// # Cancel safety
    /// Cancel-safe: the thaw is written before the first await.
    pub async fn resume(&self) -> Result<()> {
        crate::cgroups::freezer::thaw(self.cgroup_or_err()?).await
    }

    /// Resource usage now.
    pub fn stats(&self) -> Result<crate::Stats> {
        Ok(crate::cgroups::stats::read(self.cgroup_or_err()?))
    }

    /// Changes the container's resource limits (`corral update`). Invalid
    /// values are refused before anything is written.
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        crate::cgroups::update(self.cgroup_or_err()?, resources)
    }

    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(crate::cgroups::tree::pids(self.cgroup_or_err()?))
    }

    fn remove_state(&mut self) -> Result<()> {
        if self.stored.take().is_some() {
            self.runtime.state_dir()?.remove(&self.id)?;
        }
        Ok(())
    }

    fn state_error(&self, operation: &'static str) -> Error {
        let state = match self.process.as_ref().map(|p| p.reaped()) {
            Some(true) | None => "stopped",
            Some(false) if self.started => "running",
            Some(false) => "created",
        };
        Error::State {
            id: self.id.clone(),
            state,
            operation,
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let cgroup = self.cgroup.take();
        match self.process.take() {
            Some(process) => crate::reaper::kill_and_reap(process, cgroup),
            None => {
                if let Some(cg) = cgroup {
                    crate::cgroups::tree::remove_blocking(&cg);
                }
            }
        }
    }
}

/// Creates a container: the parent's half of sync points 1–3.
#[tracing::instrument(skip_all, fields(container_id = %id))]
pub(crate) async fn create(
    runtime: Runtime,
    id: String,
    spec: Spec,
    opts: CreateOptions,
) -> Result<Container> {
    crate::state::validate_id(&id)?;
    let mut plan = plan::plan(&id, &spec, runtime.layout(), opts.start_via)?;
    let hooks = HookContext::of(&spec).map(Box::new);
    plan.init.no_pivot = opts.no_pivot;
    if let Some((soft, hard)) = runtime.inherited_nofile() {
        let rlimits = &mut plan.init.process.rlimits;
        if !rlimits.iter().any(|r| r.resource == libc::RLIMIT_NOFILE) {
            rlimits.push(corral_protocol::Rlimit {
                resource: libc::RLIMIT_NOFILE,
                soft,
                hard,
            });
        }
    }
    let cgroup = crate::cgroups::prepare(runtime.cgroups(), &id, &spec)?;
    let rootfs = spec.rootfs()?;
    check_rootfs(&rootfs)?;
    let state_dir = runtime.state_dir_opt().cloned();
    if let Some(dir) = &state_dir {
        dir.create(&id)?;
    }
    let mut guard = Abort {
        process: None,
        state: state_dir.clone().map(|d| (d, id.clone())),
        cgroup: None,
    };
    if let Some(prepared) = cgroup {
        match crate::cgroups::make(prepared) {
            Ok(paths) => {
                debug!("cgroup made");
                guard.cgroup = paths;
            }
            Err(e) => {
                guard.abort().await;
                return Err(e);
            }
        }
    }
    if let Some(paths) = &guard.cgroup {
        plan::bind_container_cgroup(&mut plan.init.mounts, runtime.layout(), paths);
    }
    let made =
        match spawn_and_handshake(&runtime, &id, &plan, opts, &mut guard, hooks.as_deref()).await {
            Ok(made) => made,
            Err(e) => {
                let pid = guard
                    .process
                    .as_ref()
                    .map(|p| p.pid().as_raw_nonzero().get());
                guard.abort().await;
                if let (Some(ctx), Some(pid)) = (&hooks, pid) {
                    // The runtime spec's lifecycle goes on at delete: poststop.
                    ctx.run_logged(HookKind::Poststop, &id, "stopped", pid)
                        .await;
                }
                return Err(e);
            }
        };
    let process = guard
        .process
        .take()
        .expect("a spawned child is in the guard");
    let mut container = made.into_container(runtime, id, process);
    container.cgroup = guard.cgroup.take();
    container.hooks = hooks;
    if let Some(dir) = state_dir {
        let stored = match stored_state(&container, &spec, rootfs) {
            Ok(stored) => stored,
            Err(e) => {
                guard.process = container.process.take();
                guard.cgroup = container.cgroup.take();
                guard.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = dir.write(&stored) {
            guard.process = container.process.take();
            guard.cgroup = container.cgroup.take();
            guard.abort().await;
            return Err(e);
        }
        container.stored = Some(stored);
    }
    guard.state = None;
    // sync 3: Created. From here the handle, not the guard, owns the child.
    info!(pid = container.pid(), "created");
    Ok(container)
}

/// Undoes a half-made container: kills and reaps the child, removes the
/// state dir. Explicitly on error paths ([`Abort::abort`]), from `Drop`
/// when the create future is cancelled.
struct Abort {
    process: Option<PidFd>,
    state: Option<(crate::state::StateDir, String)>,
    /// Removed after the process is gone.
    cgroup: Option<CgroupPaths>,
}

impl Abort {
    async fn abort(&mut self) {
        if let Some(process) = self.process.take() {
            let _ = process.signal(libc::SIGKILL);
            let _ = process.wait().await;
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = crate::cgroups::tree::remove(&cg).await;
        }
        if let Some((dir, id)) = self.state.take() {
            let _ = dir.remove(&id);
        }
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        let cgroup = self.cgroup.take();
        match self.process.take() {
            Some(process) => crate::reaper::kill_and_reap(process, cgroup),
            None => {
                if let Some(cg) = cgroup {
                    crate::cgroups::tree::remove_blocking(&cg);
                }
            }
        }
        if let Some((dir, id)) = self.state.take() {
            let _ = dir.remove(&id);
        }
    }
}

fn check_rootfs(rootfs: &std::path::Path) -> Result<()> {
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Rootfs {
            path: rootfs.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        }),
        Err(source) => Err(Error::Rootfs {
            path: rootfs.to_path_buf(),
            source,
        }),
    }
}

fn stored_state(c: &Container, spec: &Spec, rootfs: std::path::PathBuf) -> Result<StoredState> {
    let (_, start_time) =
        proc_stat(c.pid()).map_err(|e| Error::sys(format!("read /proc/{}/stat", c.pid()), e))?;
    Ok(StoredState {
        id: c.id.clone(),
        pid: c.pid(),
        start_time,
        bundle: spec.bundle().to_path_buf(),
        rootfs,
        created: rfc3339_now(),
        started: false,
        cgroup: c.cgroup.clone(),
        annotations: spec
            .oci()
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        hooks: spec.oci().hooks().clone(),
    })
}

/// A child that reported `Ready`.
struct Made {
    socket: InitSocket,
    start_via: StartVia,
    stdio: [Option<stdio::Parent>; 3],
    console: Option<OwnedFd>,
}

impl Made {
    fn into_container(self, runtime: Runtime, id: String, process: PidFd) -> Container {
        let mut c = Container {
            id,
            runtime,
            process: Some(process),
            socket: Some(self.socket),
            start_via: self.start_via,
            started: false,
            stdin: None,
            stdout: None,
            stderr: None,
            console: self.console.map(|fd| {
                Console::new(fd).expect("register a pty master with the running reactor")
            }),
            copies: Vec::new(),
            stored: None,
            cgroup: None,
            hooks: None,
        };
        for (index, parent) in self.stdio.into_iter().enumerate() {
            let Some(parent) = parent else { continue };
            // Registration only fails without a reactor, and we are inside one.
            let attached = stdio::attach(parent, c.runtime.stdio_engine())
                .expect("register a pipe with the running reactor");
            match (attached, index) {
                (stdio::Attached::Stdin(w), _) => c.stdin = Some(w),
                (stdio::Attached::Output(r), 1) => c.stdout = Some(r),
                (stdio::Attached::Output(r), _) => c.stderr = Some(r),
                (stdio::Attached::Copy(done), _) => c.copies.push(done),
            }
        }
        c
    }
}

async fn spawn_and_handshake(
    runtime: &Runtime,
    id: &str,
    plan: &plan::Plan,
    opts: CreateOptions,
    guard: &mut Abort,
    hooks: Option<&HookContext>,
) -> Result<Made> {
    let (init, clone_flags) = (&plan.init, plan.clone_flags);
    let (id_maps, joins) = (plan.id_maps.as_ref(), &plan.joins);
    let opened = crate::namespaces::open(joins)?;
    let CreateOptions {
        stdio: [s0, s1, s2],
        detach,
        start_via,
        ..
    } = opts;
    let prepared = [
        stdio::prepare(s0, 0)?,
        stdio::prepare(s1, 1)?,
        stdio::prepare(s2, 2)?,
    ];
    let fifo = match start_via {
        StartVia::Fifo => Some(runtime.state_dir()?.make_fifo(id)?),
        StartVia::Socket => None,
    };
    let (parent_end, child_end) = corral_protocol::socketpair().map_err(|e| protocol_err(id, e))?;
    // With a new user namespace the child waits on this pipe for its maps.
    let maps_pipe = match id_maps {
        Some(_) => Some(
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| Error::sys("pipe2", e))?,
        ),
        None => None,
    };
    let wait_fd = maps_pipe.as_ref().map(|(r, _)| r.as_fd());
    let join = opened.join();
    let ns = NsPlan {
        wait_for_maps: wait_fd,
        join: &join,
        pid: opened.pid(),
        joined_user: joins.joined_user,
        new_time: joins.new_time.as_deref().map(str::as_bytes),
    };
    let entry = guard
        .cgroup
        .as_ref()
        .map(crate::cgroups::tree::open_entry)
        .transpose()?;
    // sync 0: clone3 into the namespaces (and the cgroup); the child execs
    // corral-init.
    let spawned = clone_init(
        runtime,
        &prepared,
        child_end.as_fd(),
        clone_flags,
        &ns,
        detach,
        entry.as_ref(),
    )?;
    drop(child_end);
    drop(entry);
    let [p0, p1, p2] = prepared;
    let stdio = [p0.parent, p1.parent, p2.parent];
    debug!(pid = spawned.pid.as_raw_nonzero().get(), "cloned");
    let process = guard.process.insert(
        PidFd::new(spawned.pidfd, spawned.pid).map_err(|e| Error::sys("register pidfd", e))?,
    );
    if let (Some(maps), Some((read, write))) = (id_maps, maps_pipe) {
        // sync 0, user namespace: maps first, then release the child. On
        // error the write end closes, the child reads EOF and exits, and
        // the guard reaps it.
        drop(read);
        crate::userns::write_id_maps(spawned.pid, maps)?;
        rustix::io::write(&write, &[1]).map_err(|e| Error::sys("release the cloned child", e))?;
    }
    let socket = InitSocket::new(parent_end).map_err(|e| Error::sys("register init socket", e))?;
    // The hooks' state JSON names the pid, known only now.
    let with_states;
    let init = match (hooks, &init.hooks) {
        (Some(ctx), Some(init_hooks)) => {
            let mut init_hooks = init_hooks.clone();
            let pid = spawned.pid.as_raw_nonzero().get();
            crate::hooks::fill_states(&mut init_hooks, ctx, id, pid);
            with_states = corral_protocol::InitSpec {
                hooks: Some(init_hooks),
                ..init.clone()
            };
            &with_states
        }
        _ => init,
    };
    let fifo = fifo.as_ref().map(|f| f.as_fd());
    let console = handshake(id, &socket, process, init, fifo, hooks).await?;
    Ok(Made {
        socket,
        start_via,
        stdio,
        console,
    })
}

/// Joined namespaces, a new time namespace and the user namespace
/// handshake, for `clone_init`.
struct NsPlan<'a> {
    /// The pipe the child waits on for its id maps.
    wait_for_maps: Option<std::os::fd::BorrowedFd<'a>>,
    join: &'a [(std::os::fd::BorrowedFd<'a>, i32)],
    pid: Option<std::os::fd::BorrowedFd<'a>>,
    joined_user: bool,
    new_time: Option<&'a [u8]>,
}

/// `clone3` into the namespaces, then exec of `corral-init` (sync 0).
fn clone_init(
    runtime: &Runtime,
    prepared: &[stdio::Prepared; 3],
    child_end: std::os::fd::BorrowedFd<'_>,
    clone_flags: u64,
    ns: &NsPlan<'_>,
    detach: bool,
    cgroup: Option<&Entry>,
) -> Result<sys::Spawned> {
    let binary = runtime.init_binary()?;
    // argv[1] names INIT_SOCKET_FD.
    let argv: [*const c_char; 3] = [c"corral-init".as_ptr(), c"3".as_ptr(), std::ptr::null()];
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let exec = match binary.fd() {
        Some(fd) => InitExec::Fd(fd),
        None => InitExec::Path(binary.path().expect("an init binary is a memfd or a path")),
    };
    let procs: Vec<std::os::fd::BorrowedFd<'_>> = match cgroup {
        Some(Entry::Procs(fds)) => fds.iter().map(|f| f.as_fd()).collect(),
        _ => Vec::new(),
    };
    // With a cgroup of its own, the child joins its cgroup namespace after
    // it is placed (sys.rs), not at clone time.
    let newcgroup = libc::CLONE_NEWCGROUP as u64;
    let unshare_cgroupns = cgroup.is_some() && clone_flags & newcgroup != 0;
    let clone_flags = if cgroup.is_some() {
        clone_flags & !newcgroup
    } else {
        clone_flags
    };
    let child = ChildPlan {
        stdio: [
            prepared[0].child_fd(),
            prepared[1].child_fd(),
            prepared[2].child_fd(),
        ],
        socket: child_end,
        socket_target: INIT_SOCKET_FD,
        init: exec,
        argv: &argv,
        envp: &envp,
        kill_on_parent_death: !detach,
        wait_for_maps: ns.wait_for_maps,
        join: ns.join,
        become_root: ns.joined_user,
        new_time: ns.new_time,
        join_pid: ns.pid,
        cgroup: match cgroup {
            Some(Entry::Dir(fd)) => Some(fd.as_fd()),
            _ => None,
        },
        cgroup_procs: &procs,
        unshare_cgroupns,
    };
    sys::spawn_init(clone_flags, &child).map_err(|e| Error::sys("clone3", e))
}

/// Sync 1–3: send the spec, relay logs and the console, until `Ready`.
async fn handshake(
    id: &str,
    socket: &InitSocket,
    process: &PidFd,
    init: &corral_protocol::InitSpec,
    fifo: Option<std::os::fd::BorrowedFd<'_>>,
    hooks: Option<&HookContext>,
) -> Result<Option<OwnedFd>> {
    // sync 1: the spec (+ the FIFO's O_PATH fd in FIFO mode).
    if let Err(e) = socket.send_spec(init, fifo).await {
        if !peer_gone(&e) {
            return Err(protocol_err(id, e));
        }
    }
    let mut console = None;
    loop {
        match socket.recv().await {
            // sync 2: setup done; the init waits for the start signal.
            Ok((ToParent::Ready, _)) => return Ok(console),
            Ok((ToParent::Log(record), _)) => emit(&record),
            // Between sync 1 and 2: the pty master, when process.terminal.
            Ok((ToParent::Console, fd)) => console = fd,
            // sync 1b: mounts done, before pivot_root: prestart and
            // createRuntime, in the runtime namespace.
            Ok((ToParent::RunHooks, _)) if hooks.is_some() => {
                let ctx = hooks.expect("checked by the guard");
                let state = ctx.state_json(id, "creating", process.pid().as_raw_nonzero().get());
                ctx.run(crate::hooks::CREATE_RUNTIME, &state).await?;
                socket
                    .send_hooks_done()
                    .await
                    .map_err(|e| protocol_err(id, e))?;
            }
            Ok((other @ (ToParent::ExecPid(_) | ToParent::RunHooks), _)) => {
                let kind = message_kind(&other);
                return Err(protocol_err(
                    id,
                    corral_protocol::Error::Unexpected { kind },
                ));
            }
            Ok((ToParent::Error(source), _)) => {
                return Err(Error::Init {
                    container_id: id.to_owned(),
                    source,
                });
            }
            // The child went away before it could speak: ECONNRESET when it
            // died with our spec frame unread (e.g. exec of corral-init failed).
            Err(e) if peer_gone(&e) => {
                let status = process
                    .wait()
                    .await
                    .map_err(|e| Error::sys("wait for init", e))?;
                return Err(Error::InitDied {
                    container_id: id.to_owned(),
                    status,
                });
            }
            Err(e) => return Err(protocol_err(id, e)),
        }
    }
}

pub(crate) fn peer_gone(e: &corral_protocol::Error) -> bool {
    use rustix::io::Errno;
    match e {
        corral_protocol::Error::Closed => true,
        corral_protocol::Error::Io { errno, .. } => {
            *errno == Errno::CONNRESET || *errno == Errno::PIPE
        }
        _ => false,
    }
}

pub(crate) fn protocol_err(id: &str, source: corral_protocol::Error) -> Error {
    Error::Protocol {
        container_id: id.to_owned(),
        source,
    }
}

pub(crate) fn message_kind(msg: &ToParent) -> corral_protocol::Kind {
    match msg {
        ToParent::ExecPid(_) => corral_protocol::Kind::ExecPid,
        ToParent::Ready => corral_protocol::Kind::Ready,
        ToParent::Error(_) => corral_protocol::Kind::Error,
        ToParent::Log(_) => corral_protocol::Kind::Log,
        ToParent::Console => corral_protocol::Kind::Console,
        ToParent::RunHooks => corral_protocol::Kind::RunHooks,
    }
}

/// Re-emits an init log record in the current (container) span.
pub(crate) fn emit(r: &LogRecord) {
    let path = r.path.as_ref().map(|p| p.as_path().to_owned());
    let step = r.step.name();
    match r.level {
        LogLevel::Error => tracing::error!(step, ?path, "{}", r.message),
        LogLevel::Warn => tracing::warn!(step, ?path, "{}", r.message),
        LogLevel::Info => tracing::info!(step, ?path, "{}", r.message),
        LogLevel::Debug => tracing::debug!(step, ?path, "{}", r.message),
        LogLevel::Trace => tracing::trace!(step, ?path, "{}", r.message),
    }
}
