//! The two ends of the init socket, typed by role.
//!
//! [`InitChannel`] is the init's end (blocking); [`ParentEnd`] is the
//! runtime's (non-blocking, driven from tokio's `AsyncFd::try_io`). Each
//! method sends or expects one message, so call sites never build a
//! [`ToInit`] or [`ToParent`] by hand. The order of the calls (the sync
//! points) is written in `docs/protocol.md`; these types only refuse a
//! message that cannot come next from where they stand.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::frame::{FdCount, Kind, Message, recv, send};
use crate::messages::{
    ExecPid, ExecSpec, InitError, InitSpec, JoinCgroup, LogRecord, MountFd, ProcessOverride,
    SpawnRequest, StartVia, ToInit, ToParent,
};

/// The first message an init receives: what it is there to do.
#[derive(Debug)]
pub enum Request {
    /// Set up a new container (the spec, and the start FIFO's `O_PATH` fd
    /// exactly when `start_via` is [`StartVia::Fifo`]).
    Create(Box<InitSpec>, Option<OwnedFd>),
    /// Exec mode: start a process in a running container, whose pidfd
    /// comes with it.
    Exec(Box<ExecSpec>, OwnedFd),
    /// Resident mode: clone a container's init, with the request's fds in
    /// order (see [`SpawnRequest`]).
    Spawn(SpawnRequest, Vec<OwnedFd>),
    /// Sync 0b: join the container's cgroup through these v1 `tasks`
    /// files (see [`ToInit::JoinCgroup`]); the spec comes next.
    JoinCgroup(JoinCgroup, Vec<OwnedFd>),
}

/// The init's end of the init socket. Blocking.
///
/// Dropping it closes the socket; so does a successful `execve`, since the
/// socket is `CLOEXEC`, which is how the parent learns the exec happened.
#[derive(Debug)]
pub struct InitChannel {
    fd: OwnedFd,
}

impl InitChannel {
    /// Wraps the init's end of a [`socketpair`](crate::socketpair).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The socket.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Waits for the spec, the first message. Returns the start FIFO's
    /// `O_PATH` fd when `start_via` is [`StartVia::Fifo`] (and exactly then).
    ///
    /// `Start` here is [`Error::Unexpected`]; a parent gone away is
    /// [`Error::Closed`].
    pub fn recv_spec(&self) -> Result<(InitSpec, Option<OwnedFd>)> {
        let (msg, fds) = recv::<ToInit>(self.as_fd())?;
        match msg {
            ToInit::Spec(spec) => {
                check_fifo(spec.start_via, fds.len())?;
                Ok((*spec, fds.into_iter().next()))
            }
            other => Err(Error::Unexpected { kind: other.kind() }),
        }
    }

    /// Waits for the first message, which says whether this init sets up a
    /// container ([`Request::Create`], as [`InitChannel::recv_spec`]) or
    /// runs in exec mode ([`Request::Exec`]); a resident init is asked to
    /// spawn ([`Request::Spawn`]). An init cloned before its cgroup was
    /// made first gets [`Request::JoinCgroup`], then calls this again for
    /// the spec. `Start` here is [`Error::Unexpected`].
    pub fn recv_request(&self) -> Result<Request> {
        let (msg, fds) = recv::<ToInit>(self.as_fd())?;
        match msg {
            ToInit::Spec(spec) => {
                check_fifo(spec.start_via, fds.len())?;
                Ok(Request::Create(spec, fds.into_iter().next()))
            }
            ToInit::Exec(spec) => {
                let pidfd = fds.into_iter().next().ok_or(Error::UnexpectedFds {
                    kind: Kind::Exec,
                    expected: FdCount::One,
                    got: 0,
                })?;
                Ok(Request::Exec(spec, pidfd))
            }
            ToInit::Spawn(req) => {
                let want = 1
                    + req.stdio.iter().filter(|s| **s).count()
                    + req.cgroup_fds as usize
                    + usize::from(req.wait_for_maps);
                if fds.len() != want || (req.cgroup_dir && req.cgroup_fds != 1) {
                    return Err(Error::UnexpectedFds {
                        kind: Kind::Spawn,
                        expected: FdCount::OneOrMore,
                        got: fds.len(),
                    });
                }
                Ok(Request::Spawn(req, fds))
            }
            ToInit::JoinCgroup(join) => Ok(Request::JoinCgroup(join, fds)),
            other @ (ToInit::Start
            | ToInit::StartWith(_)
            | ToInit::HooksDone
            | ToInit::MountFd(_)) => Err(Error::Unexpected { kind: other.kind() }),
        }
    }

    /// Waits for the detached mount of op `mount` (a `MountFd` the parent
    /// sent after the spec). A `MountFd` for another op, or any other
    /// message, is [`Error::Unexpected`].
    pub fn recv_mount_fd(&self, mount: u32) -> Result<OwnedFd> {
        let (msg, fds) = recv::<ToInit>(self.as_fd())?;
        match msg {
            ToInit::MountFd(m) if m.mount == mount => {
                fds.into_iter().next().ok_or(Error::UnexpectedFds {
                    kind: Kind::MountFd,
                    expected: FdCount::One,
                    got: 0,
                })
            }
            other => Err(Error::Unexpected { kind: other.kind() }),
        }
    }

    /// Exec mode: reports the started process's pid, with its pidfd.
    pub fn send_exec_pid(&self, pid: i32, pidfd: BorrowedFd<'_>) -> Result<()> {
        send(self.as_fd(), &ToParent::ExecPid(ExecPid { pid }), &[pidfd])
    }

    /// Reports that setup is done and the init waits for the start signal.
    pub fn send_ready(&self) -> Result<()> {
        send(self.as_fd(), &ToParent::Ready, &[])
    }

    /// Reports a failure; the init exits after sending it.
    pub fn send_error(&self, error: &InitError) -> Result<()> {
        send(self.as_fd(), &ToParent::Error(error.clone()), &[])
    }

    /// Sends an event for the runtime to log in the container's span.
    pub fn send_log(&self, record: &LogRecord) -> Result<()> {
        send(self.as_fd(), &ToParent::Log(record.clone()), &[])
    }

    /// Sends the console's pty master (one fd).
    pub fn send_console(&self, master: BorrowedFd<'_>) -> Result<()> {
        send(self.as_fd(), &ToParent::Console, &[master])
    }

    /// Reports that the rootfs is bound (see [`ToParent::RootfsReady`]).
    pub fn send_rootfs_ready(&self) -> Result<()> {
        send(self.as_fd(), &ToParent::RootfsReady, &[])
    }

    /// Sends the seccomp user-notification fd (one fd).
    pub fn send_seccomp_listener(&self, listener: BorrowedFd<'_>) -> Result<()> {
        send(self.as_fd(), &ToParent::SeccompListener, &[listener])
    }

    /// Asks the parent to run the `prestart` and `createRuntime` hooks and
    /// blocks until it answers `HooksDone`. A parent gone away (it failed a
    /// hook and is killing us) is [`Error::Closed`].
    pub fn run_parent_hooks(&self) -> Result<()> {
        send(self.as_fd(), &ToParent::RunHooks, &[])?;
        let (msg, _fds) = recv::<ToInit>(self.as_fd())?;
        match msg {
            ToInit::HooksDone => Ok(()),
            other => Err(Error::Unexpected { kind: other.kind() }),
        }
    }

    /// Blocks until `Start` (`None`) or `StartWith` (the override). A
    /// parent gone away is [`Error::Closed`]; any other message is
    /// [`Error::Unexpected`].
    pub fn wait_start(&self) -> Result<Option<ProcessOverride>> {
        let (msg, _fds) = recv::<ToInit>(self.as_fd())?;
        match msg {
            ToInit::Start => Ok(None),
            ToInit::StartWith(process) => Ok(Some(*process)),
            other => Err(Error::Unexpected { kind: other.kind() }),
        }
    }
}

impl AsFd for InitChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The runtime's end of the init socket.
///
/// The socket may be non-blocking: every method makes one attempt and
/// returns `EAGAIN` as [`Error::Io`] (see [`Error::is_would_block`]), so it
/// can run inside tokio's `AsyncFd::try_io`. Dropping it closes the socket,
/// which the init sees as [`Error::Closed`].
#[derive(Debug)]
pub struct ParentEnd {
    fd: OwnedFd,
}

impl ParentEnd {
    /// Wraps the runtime's end of a [`socketpair`](crate::socketpair).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The socket.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Gives the socket back.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends the spec, with the start FIFO's `O_PATH` fd exactly when
    /// `spec.start_via` is [`StartVia::Fifo`].
    pub fn send_spec(&self, spec: &InitSpec, fifo: Option<BorrowedFd<'_>>) -> Result<()> {
        let fds: &[BorrowedFd<'_>] = match &fifo {
            Some(fd) => std::slice::from_ref(fd),
            None => &[],
        };
        check_fifo(spec.start_via, fds.len())?;
        send(self.as_fd(), &ToInit::Spec(Box::new(spec.clone())), fds)
    }

    /// Exec mode: what to start, with the pidfd of the container's process
    /// whose namespaces the init joins.
    pub fn send_exec(&self, spec: &ExecSpec, target: BorrowedFd<'_>) -> Result<()> {
        send(
            self.as_fd(),
            &ToInit::Exec(Box::new(spec.clone())),
            &[target],
        )
    }

    /// Resident mode: asks the resident init for a container's init, with
    /// the request's fds in order (see [`SpawnRequest`]).
    pub fn send_spawn(&self, req: &SpawnRequest, fds: &[BorrowedFd<'_>]) -> Result<()> {
        send(self.as_fd(), &ToInit::Spawn(*req), fds)
    }

    /// Sync 0b: the container's cgroup, for an init cloned before it was
    /// made: v1 `tasks` files to write `0` to (none when no cgroup could
    /// be made), and whether to unshare the cgroup namespace after.
    pub fn send_join_cgroup(
        &self,
        tasks: &[BorrowedFd<'_>],
        unshare_namespace: bool,
    ) -> Result<()> {
        send(
            self.as_fd(),
            &ToInit::JoinCgroup(JoinCgroup { unshare_namespace }),
            tasks,
        )
    }

    /// Sends the detached mount for op `mount` of the spec's mounts.
    pub fn send_mount_fd(&self, mount: u32, fd: BorrowedFd<'_>) -> Result<()> {
        send(self.as_fd(), &ToInit::MountFd(MountFd { mount }), &[fd])
    }

    /// Tells the init the parent's hooks ran (answer to `RunHooks`).
    pub fn send_hooks_done(&self) -> Result<()> {
        send(self.as_fd(), &ToInit::HooksDone, &[])
    }

    /// Tells the init to exec the workload.
    pub fn send_start(&self) -> Result<()> {
        send(self.as_fd(), &ToInit::Start, &[])
    }

    /// Tells the init to exec the workload with other arguments and env.
    pub fn send_start_with(&self, process: &ProcessOverride) -> Result<()> {
        send(
            self.as_fd(),
            &ToInit::StartWith(Box::new(process.clone())),
            &[],
        )
    }

    /// Receives one message from the init, with the fd it carries
    /// ([`ToParent::Console`] carries the pty master,
    /// [`ToParent::SeccompListener`] the notification fd; the others none).
    ///
    /// [`Error::Closed`] means the init closed its end: a successful
    /// `execve`, or an exit.
    pub fn recv(&self) -> Result<(ToParent, Option<OwnedFd>)> {
        let (msg, fds) = recv::<ToParent>(self.as_fd())?;
        Ok((msg, fds.into_iter().next()))
    }
}

impl AsFd for ParentEnd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// For tokio's `AsyncFd`, which registers through `AsRawFd`.
impl AsRawFd for ParentEnd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The spec carries the FIFO fd exactly when it says to start via the FIFO.
fn check_fifo(start_via: StartVia, got: usize) -> Result<()> {
    let expected = match start_via {
        StartVia::Fifo => FdCount::One,
        StartVia::Socket => FdCount::Zero,
    };
    if expected.allows(got) {
        Ok(())
    } else {
        Err(Error::UnexpectedFds {
            kind: Kind::Spec,
            expected,
            got,
        })
    }
}
