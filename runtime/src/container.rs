//! [`Container`]: the handle to one container this runtime created, and
//! the start-up sequence (`docs/protocol.md`) on the parent's side.
//!
//! This module decides order and state; the kernel work is in `sys` (the
//! clone) and in `corral-init` (everything inside the namespaces).

use corral_protocol::{LogLevel, LogRecord, StartVia, ToParent};
use tracing::info;

use crate::ExitStatus;
use crate::cgroups::CgroupPaths;
use crate::channel::InitSocket;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::hooks::{HookContext, Kind as HookKind};
use crate::pidfd::PidFd;
use crate::runtime::Runtime;
use crate::state::StoredState;
use crate::stdio::{self, ContainerOutput, ContainerStdin};

/// The fd number the init socket has inside the init (named in its argv).
pub(crate) const INIT_SOCKET_FD: i32 = 3;

/// A container created by this process.
///
/// # Drop
/// Dropping a handle whose process still runs kills it (`SIGKILL` through
/// the pidfd) and reaps it in a background task (or, outside a tokio
/// runtime, with a short blocking wait), unless [`Container::detach`] was
/// called. The state dir, if any, is removed only by [`Container::delete`].
#[derive(Debug)]
pub struct Container {
    pub(crate) id: String,
    pub(crate) runtime: Runtime,
    pub(crate) process: Option<PidFd>,
    pub(crate) socket: Option<InitSocket>,
    pub(crate) start_via: StartVia,
    pub(crate) started: bool,
    pub(crate) stdin: Option<ContainerStdin>,
    pub(crate) stdout: Option<ContainerOutput>,
    pub(crate) stderr: Option<ContainerOutput>,
    pub(crate) console: Option<Console>,
    /// File copies of stdout and stderr still to report EOF.
    pub(crate) copies: Vec<stdio::CopyDone>,
    pub(crate) stored: Option<StoredState>,
    pub(crate) cgroup: Option<CgroupPaths>,
    /// The config's hooks, for `poststart` and `poststop`.
    pub(crate) hooks: Option<Box<HookContext>>,
    /// The seccomp filter, for the processes `exec` starts.
    pub(crate) seccomp: Option<Box<crate::seccomp_notify::ExecSeccomp>>,
    /// Set on a container handed out by a [`Pool`](crate::Pool): wakes
    /// the pool's refill when the caller first waits on it or lets it go.
    pub(crate) refill: Option<std::sync::Arc<tokio::sync::Notify>>,
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
            // The init exits after its report: release it, and its mount
            // namespace, before `poststop` (which may free the rootfs).
            let _ = self.process().wait().await;
            let _ = self.release_and_remove_cgroup().await;
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
    /// This returns as soon as the exit is known. The process is left a
    /// zombie (it keeps its pid) and, with a mount namespace hold
    /// (`RuntimeBuilder::mount_ns_holds`), its mount namespace stays
    /// referenced, until [`Container::delete`] or the handle's drop
    /// releases both; `delete` returns only once the namespace is torn
    /// down. Release the rootfs's backing (a loop or dm device, an
    /// overlay's lower layers) after `delete`, not after `wait`.
    ///
    /// # Cancel safety
    /// Cancel-safe, and may be awaited from several tasks at once (through
    /// a shared reference): all see the same status.
    pub async fn wait(&self) -> Result<ExitStatus> {
        // From a warm pool: the caller now blocks on its job, so the
        // pool's refill can have the cores (see `crate::pool`).
        if let Some(refill) = &self.refill {
            refill.notify_one();
        }
        let status = self
            .process()
            .wait()
            .await
            .map_err(|e| Error::sys("waitid on pidfd", e))?;
        // The OOM killer kills with SIGKILL: only then is the counter worth
        // a read on the wake-up path.
        let oom = status.signal() == Some(libc::SIGKILL)
            && self
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
        self.remove_exited().await
    }

    /// Kills the process if it still runs, reaps it, then deletes.
    pub async fn force_delete(mut self) -> Result<()> {
        let _ = self.kill(libc::SIGKILL);
        self.process()
            .wait()
            .await
            .map_err(|e| Error::sys("waitid on pidfd", e))?;
        self.remove_exited().await
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

    /// What `delete` removes once the process has exited (see
    /// [`Container::release_and_remove_cgroup`]), then the state dir, then
    /// `poststop`.
    async fn remove_exited(&mut self) -> Result<()> {
        self.release_and_remove_cgroup().await?;
        self.remove_state()?;
        self.run_poststop().await;
        Ok(())
    }

    /// Releases the exited process's zombie (the reap is deferred, see
    /// `crate::pidfd`), then awaits its mount namespace's teardown (a grace
    /// period, mostly waiting) and the cgroup's removal side by side.
    async fn release_and_remove_cgroup(&mut self) -> Result<()> {
        let teardown = self
            .process()
            .release()
            .map_err(|e| Error::sys("waitid on pidfd", e))?;
        let ((), removed) = tokio::join!(teardown, self.remove_cgroup());
        removed
    }

    fn remove_state(&mut self) -> Result<()> {
        if self.stored.take().is_some() {
            self.runtime.state_dir()?.remove(&self.id)?;
        }
        Ok(())
    }

    fn state_error(&self, operation: &'static str) -> Error {
        let state = match self.process.as_ref().map(|p| p.exited()) {
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
        if let Some(refill) = self.refill.take() {
            refill.notify_one();
        }
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
        ToParent::SeccompListener => corral_protocol::Kind::SeccompListener,
        ToParent::RunHooks => corral_protocol::Kind::RunHooks,
        ToParent::RootfsReady => corral_protocol::Kind::RootfsReady,
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
