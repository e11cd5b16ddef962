//! The tokio copy of a container's output pipe into a file: `splice(2)`
//! driven by tokio readiness (`AsyncFd`). `Backend::Auto` uses it for
//! every file copy (it beat the ring's `IORING_OP_SPLICE`, which the kernel
//! always hands to an io-wq worker: `docs/performance.md`, stdio), and
//! `Backend::Fallback` for all of them where io_uring is unavailable.
//!
//! This module owns the copy loop only; choosing it is `uring::Engine`'s.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::pipe::SpliceFlags;
use tokio::io::Interest;
use tokio::sync::oneshot;
use tracing::Instrument;

/// Bytes asked of one splice; the pipe's content caps it.
const SPLICE_LEN: usize = 1 << 20;

/// Spawns a task on the current tokio runtime that splices `pipe` into
/// `file` until EOF; the returned channel gets the byte count.
///
/// Writes go to the page cache: a `splice` into a regular file does not
/// wait for the pipe (`SPLICE_F_NONBLOCK`) and rarely for the disk.
pub(crate) fn copy_to_file(
    pipe: OwnedFd,
    file: OwnedFd,
) -> io::Result<oneshot::Receiver<io::Result<u64>>> {
    set_nonblocking(&pipe)?;
    let pipe = crate::sys::register(pipe, Interest::READABLE)?;
    let (done, rx) = oneshot::channel();
    let span = tracing::debug_span!("stdio_copy");
    tokio::spawn(
        async move {
            let result = splice_until_eof(&pipe, &file).await;
            // Close both before reporting (see uring::driver).
            drop((pipe, file));
            let _ = done.send(result);
        }
        .instrument(span),
    );
    Ok(rx)
}

async fn splice_until_eof(
    pipe: &tokio::io::unix::AsyncFd<OwnedFd>,
    file: &OwnedFd,
) -> io::Result<u64> {
    let mut copied = 0u64;
    loop {
        let mut guard = pipe.readable().await?;
        match guard.try_io(|pipe| {
            rustix::pipe::splice(
                pipe.get_ref(),
                None,
                file,
                None,
                SPLICE_LEN,
                SpliceFlags::NONBLOCK,
            )
            .map_err(io::Error::from)
        }) {
            Ok(Ok(0)) => return Ok(copied),
            Ok(Ok(n)) => {
                tracing::trace!(bytes = n, "splice");
                copied += n as u64;
            }
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
}

/// Sets `O_NONBLOCK` on the parent's end (tokio's requirement for
/// `AsyncFd`); the container's end of the pipe stays blocking.
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(fd.as_fd())?;
    fcntl_setfl(fd.as_fd(), flags | OFlags::NONBLOCK)?;
    Ok(())
}
