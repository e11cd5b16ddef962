//! Where a container's fds 0, 1 and 2 come from, and the parent's ends of
//! piped stdio as tokio `AsyncWrite`/`AsyncRead`.
//!
//! The child's ends stay blocking (the workload expects ordinary fds); the
//! parent's ends are made non-blocking by tokio when wrapped.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::pipe::PipeFlags;
use tokio::net::unix::pipe;

use crate::error::{Error, Result};

/// The write end of a container's piped stdin.
pub type ContainerStdin = pipe::Sender;
/// The read end of a container's piped stdout or stderr.
pub type ContainerOutput = pipe::Receiver;

/// What one of the container's stdio fds is.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The calling process's own fd.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe whose other end the caller takes from the container.
    Piped,
    /// This fd (a file, a socket, a pipe end).
    Fd(OwnedFd),
}

impl Stdio {
    /// [`Stdio::Inherit`].
    pub fn inherit() -> Self {
        Stdio::Inherit
    }
    /// [`Stdio::Null`].
    pub fn null() -> Self {
        Stdio::Null
    }
    /// [`Stdio::Piped`].
    pub fn piped() -> Self {
        Stdio::Piped
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Self {
        Stdio::Fd(file.into())
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio::Fd(fd)
    }
}

/// One stdio slot resolved: what the child gets, what the parent keeps.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The child's fd; `None` inherits.
    pub child: Option<OwnedFd>,
    /// The parent's end of a pipe.
    pub parent: Option<OwnedFd>,
}

impl Prepared {
    pub fn child_fd(&self) -> Option<BorrowedFd<'_>> {
        self.child.as_ref().map(|fd| fd.as_fd())
    }
}

/// Resolves `stdio` for fd `index` (0 is stdin: the child reads).
pub(crate) fn prepare(stdio: Stdio, index: usize) -> Result<Prepared> {
    Ok(match stdio {
        Stdio::Inherit => Prepared::default(),
        Stdio::Null => {
            let null = rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::sys("open /dev/null", e))?;
            Prepared {
                child: Some(null),
                parent: None,
            }
        }
        Stdio::Piped => {
            let (read, write) =
                rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
            if index == 0 {
                Prepared {
                    child: Some(read),
                    parent: Some(write),
                }
            } else {
                Prepared {
                    child: Some(write),
                    parent: Some(read),
                }
            }
        }
        Stdio::Fd(fd) => Prepared {
            child: Some(fd),
            parent: None,
        },
    })
}

/// Wraps a parent-side pipe end for tokio.
pub(crate) fn into_stdin(fd: OwnedFd) -> Result<ContainerStdin> {
    pipe::Sender::from_owned_fd(fd).map_err(|e| Error::sys("register stdin pipe", e))
}

/// Wraps a parent-side pipe end for tokio.
pub(crate) fn into_output(fd: OwnedFd) -> Result<ContainerOutput> {
    pipe::Receiver::from_owned_fd(fd).map_err(|e| Error::sys("register output pipe", e))
}
