//! Where a container's fds 0, 1 and 2 come from, and what the parent does
//! with its ends: piped stdin as a tokio `AsyncWrite`, piped output as an
//! `AsyncRead` ([`ContainerOutput`]), output copied into a file.
//!
//! The child's ends stay blocking (the workload expects ordinary fds). The
//! copies themselves run on the io_uring thread (`crate::uring`) or on
//! tokio (`crate::splice`, a tokio pipe): see `uring::Backend` for which.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::pipe::PipeFlags;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::uring::{Engine, RingHandle};

/// The write end of a container's piped stdin.
pub type ContainerStdin = pipe::Sender;

/// Completion of a copy into a file: the byte count at EOF.
pub(crate) type CopyDone = oneshot::Receiver<io::Result<u64>>;

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
    /// A pipe that the runtime copies into this file until EOF (stdout and
    /// stderr only): the container never holds the file itself. Await
    /// [`Container::stdio_done`](crate::Container::stdio_done) before
    /// reading the file.
    File(OutputFile),
}

/// The destination of [`Stdio::file`].
#[derive(Debug)]
pub enum OutputFile {
    /// Created (mode 0644) or truncated when the container is created.
    Path(PathBuf),
    /// Written at its file position. It must not be `O_APPEND`
    /// (`splice(2)` refuses those with `EINVAL`).
    File(File),
}

impl From<File> for OutputFile {
    fn from(file: File) -> Self {
        OutputFile::File(file)
    }
}

impl From<PathBuf> for OutputFile {
    fn from(path: PathBuf) -> Self {
        OutputFile::Path(path)
    }
}

impl From<&Path> for OutputFile {
    fn from(path: &Path) -> Self {
        OutputFile::Path(path.to_path_buf())
    }
}

impl From<&str> for OutputFile {
    fn from(path: &str) -> Self {
        OutputFile::Path(path.into())
    }
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
    /// [`Stdio::File`]: output copied into `file` (a path or a [`File`])
    /// by `splice`, with no copy through user space.
    pub fn file(file: impl Into<OutputFile>) -> Self {
        Stdio::File(file.into())
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
    /// The parent's end of a pipe, and what it is for.
    pub parent: Option<Parent>,
}

/// The parent's end of one stdio pipe.
#[derive(Debug)]
pub(crate) enum Parent {
    /// Piped stdin: the write end.
    Stdin(OwnedFd),
    /// Piped output: the read end.
    Output(OwnedFd),
    /// Output into a file: the read end and the file.
    CopyToFile { pipe: OwnedFd, file: OwnedFd },
}

/// A parent end put to work.
#[derive(Debug)]
pub(crate) enum Attached {
    Stdin(ContainerStdin),
    Output(ContainerOutput),
    Copy(CopyDone),
}

/// The child's ends of the three slots, for the clone.
pub(crate) fn child_fds(prepared: &[Prepared; 3]) -> [Option<BorrowedFd<'_>>; 3] {
    [
        prepared[0].child_fd(),
        prepared[1].child_fd(),
        prepared[2].child_fd(),
    ]
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
                    parent: Some(Parent::Stdin(write)),
                }
            } else {
                Prepared {
                    child: Some(write),
                    parent: Some(Parent::Output(read)),
                }
            }
        }
        Stdio::Fd(fd) => Prepared {
            child: Some(fd),
            parent: None,
        },
        Stdio::File(_) if index == 0 => {
            return Err(Error::invalid(
                "stdin",
                "Stdio::file copies output; give stdin the file itself (Stdio::from(File))",
            ));
        }
        Stdio::File(target) => {
            let file = open_output(target)?;
            let (read, write) =
                rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
            // Fewer, larger splices: each costs a wake-up (and on io_uring a
            // hand-off to a worker). Best effort: the size is capped by
            // /proc/sys/fs/pipe-max-size and the user's pipe quota.
            let _ = rustix::pipe::fcntl_setpipe_size(&read, COPY_PIPE_SIZE);
            Prepared {
                child: Some(write),
                parent: Some(Parent::CopyToFile { pipe: read, file }),
            }
        }
    })
}

/// Pipe size for output copied into a file (the kernel default is 64 KiB).
pub(crate) const COPY_PIPE_SIZE: usize = 1 << 20;

fn open_output(target: OutputFile) -> Result<OwnedFd> {
    match target {
        OutputFile::File(file) => Ok(file.into()),
        OutputFile::Path(path) => {
            use rustix::fs::{Mode, OFlags};
            rustix::fs::open(
                &path,
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map_err(|e| Error::sys(format!("open output file {path:?}"), e))
        }
    }
}

/// Starts what `parent` is for on `engine`; needs a tokio runtime.
pub(crate) fn attach(parent: Parent, engine: &Engine) -> Result<Attached> {
    Ok(match (parent, engine) {
        (Parent::Stdin(fd), _) => Attached::Stdin(
            pipe::Sender::from_owned_fd(fd).map_err(|e| Error::sys("register stdin pipe", e))?,
        ),
        (Parent::Output(fd), Engine::Fallback) => Attached::Output(ContainerOutput {
            inner: Output::Pipe(
                pipe::Receiver::from_owned_fd(fd)
                    .map_err(|e| Error::sys("register output pipe", e))?,
            ),
        }),
        (Parent::Output(fd), Engine::Ring { ring, .. }) => {
            let (job, chunks) = ring.read_pipe(fd);
            Attached::Output(ContainerOutput {
                inner: Output::Ring(RingReader {
                    ring: ring.clone(),
                    job,
                    chunks,
                    current: Vec::new(),
                    pos: 0,
                    done: false,
                }),
            })
        }
        (
            Parent::CopyToFile { pipe, file },
            Engine::Ring {
                ring,
                files_on_ring: true,
            },
        ) => Attached::Copy(ring.copy_to_file(pipe, file)),
        (Parent::CopyToFile { pipe, file }, _) => Attached::Copy(
            crate::splice::copy_to_file(pipe, file)
                .map_err(|e| Error::sys("register output pipe", e))?,
        ),
    })
}

/// The read end of a container's piped stdout or stderr: an [`AsyncRead`]
/// that ends at EOF, when every writer in the container has closed it.
///
/// With the io_uring backend, the ring thread reads the pipe into at most
/// four 64 KiB buffers ahead of this reader; a reader that stops reading
/// stops the copy (the container then blocks on its full pipe).
///
/// # Drop
/// Closes the read end (the container's further writes fail with `EPIPE`).
#[derive(Debug)]
pub struct ContainerOutput {
    inner: Output,
}

#[derive(Debug)]
enum Output {
    Pipe(pipe::Receiver),
    Ring(RingReader),
}

#[derive(Debug)]
struct RingReader {
    ring: RingHandle,
    job: u64,
    chunks: mpsc::UnboundedReceiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl AsyncRead for ContainerOutput {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Output::Pipe(pipe) => Pin::new(pipe).poll_read(cx, buf),
            Output::Ring(reader) => reader.poll_read(cx, buf),
        }
    }
}

impl RingReader {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.pos < self.current.len() {
                let n = buf.remaining().min(self.current.len() - self.pos);
                buf.put_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                if self.pos == self.current.len() {
                    // The ring may read into this buffer again.
                    self.ring
                        .refill(self.job, std::mem::take(&mut self.current));
                    self.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.chunks.poll_recv(cx)) {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                None => {
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        if !self.done {
            self.ring.close(self.job);
        }
    }
}
