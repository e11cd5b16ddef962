//! The runtime's end of the init socket, made async: the role methods the
//! start-up sequence calls (see `docs/protocol.md`), over the protocol
//! crate's non-blocking send and receive.

use std::os::fd::{BorrowedFd, OwnedFd};

use corral_protocol::{Error, InitSpec, ParentEnd, ProcessOverride, ToParent};
use tokio::io::unix::AsyncFd;

/// The parent's end, registered with the reactor.
#[derive(Debug)]
pub(crate) struct InitSocket {
    fd: AsyncFd<ParentEnd>,
}

impl InitSocket {
    /// Takes the parent's end of the socketpair and makes it non-blocking.
    pub fn new(fd: OwnedFd) -> std::io::Result<Self> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(InitSocket {
            fd: crate::sys::register(
                ParentEnd::from_fd(fd),
                tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
            )?,
        })
    }

    /// Sync 1: the init spec (and the start FIFO, in FIFO mode).
    pub async fn send_spec(
        &self,
        spec: &InitSpec,
        fifo: Option<BorrowedFd<'_>>,
    ) -> Result<(), Error> {
        loop {
            let mut guard = self.fd.writable().await.map_err(io_error)?;
            match guard.get_inner().send_spec(spec, fifo) {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Sync 0b: the v1 cgroup's `tasks` files for an init cloned before
    /// its cgroup was made (see `ParentEnd::send_join_cgroup`).
    pub async fn send_join_cgroup(
        &self,
        tasks: &[BorrowedFd<'_>],
        unshare_namespace: bool,
    ) -> Result<(), Error> {
        loop {
            let mut guard = self.fd.writable().await.map_err(io_error)?;
            match guard.get_inner().send_join_cgroup(tasks, unshare_namespace) {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Sync 1a: the detached mount for op `mount` of the spec's mounts.
    pub async fn send_mount_fd(&self, mount: u32, fd: BorrowedFd<'_>) -> Result<(), Error> {
        loop {
            let mut guard = self.fd.writable().await.map_err(io_error)?;
            match guard.get_inner().send_mount_fd(mount, fd) {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Exec sync 1: what to start, with the target's pidfd.
    pub async fn send_exec(
        &self,
        spec: &corral_protocol::ExecSpec,
        target: BorrowedFd<'_>,
    ) -> Result<(), Error> {
        loop {
            let mut guard = self.fd.writable().await.map_err(io_error)?;
            match guard.get_inner().send_exec(spec, target) {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Sync 4: tells the init to exec.
    pub async fn send_start(&self, takeover: Option<&ProcessOverride>) -> Result<(), Error> {
        loop {
            let mut guard = self.fd.writable().await.map_err(io_error)?;
            let sent = match takeover {
                None => guard.get_inner().send_start(),
                Some(process) => guard.get_inner().send_start_with(process),
            };
            match sent {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Sync 1b: the parent's hooks ran; the init goes on.
    pub async fn send_hooks_done(&self) -> Result<(), Error> {
        loop {
            let mut guard = self.fd.writable().await.map_err(io_error)?;
            match guard.get_inner().send_hooks_done() {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// The next message from the init. `Err(Error::Closed)` is EOF: after
    /// `Start`, the exec succeeded (the socket is close-on-exec).
    ///
    /// # Cancel safety
    /// Cancel-safe: a frame is consumed only by the `recvmsg` that returns it.
    pub async fn recv(&self) -> Result<(ToParent, Option<OwnedFd>), Error> {
        loop {
            let mut guard = self.fd.readable().await.map_err(io_error)?;
            match guard.get_inner().recv() {
                Err(e) if e.is_would_block() => guard.clear_ready(),
                other => return other,
            }
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Io {
        op: "poll init socket",
        errno: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
    }
}
