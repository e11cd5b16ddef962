//! [`Console`]: the parent's end of a container process's terminal (the
//! pty master the init sent over the init socket), as tokio
//! `AsyncRead` + `AsyncWrite`, resizable.
//!
//! The master is non-blocking and registered with the caller's reactor
//! (`AsyncFd`): no thread and no task per console. This module does not
//! copy anything anywhere; bridging a user's own terminal is the command
//! line's job.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::termios::{Winsize, tcgetwinsize, tcsetwinsize};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// The pty master of a container process whose `process.terminal` is true.
///
/// Reading gives what the process writes to its terminal (with the line
/// discipline's processing, e.g. `\n` as `\r\n` and echo of input);
/// writing is typing into it. Once every slave fd is closed (the process
/// and whatever it forked have exited) reads return end of file: the
/// kernel's `EIO` on a pty master is reported as EOF.
///
/// `&Console` is `AsyncRead` and `AsyncWrite` too, so one task can read
/// while another writes.
///
/// # Drop
/// Closes the master. The process then gets `SIGHUP` on its next terminal
/// access, if it is the session leader the kernel hangs up.
#[derive(Debug)]
pub struct Console {
    fd: AsyncFd<OwnedFd>,
}

impl Console {
    /// Makes `master` non-blocking and registers it with the current tokio
    /// reactor.
    pub(crate) fn new(master: OwnedFd) -> io::Result<Self> {
        rustix::io::ioctl_fionbio(&master, true)?;
        let fd = crate::sys::register(master, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Console { fd })
    }

    /// Sets the terminal's window size (`TIOCSWINSZ`); the process gets
    /// `SIGWINCH`.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(self.fd.get_ref(), size).map_err(io::Error::from)
    }

    /// The terminal's window size as `(rows, cols)`.
    pub fn size(&self) -> io::Result<(u16, u16)> {
        let size = tcgetwinsize(self.fd.get_ref())?;
        Ok((size.ws_row, size.ws_col))
    }

    /// Gives the master back as a blocking fd, for another process (a
    /// `--console-socket` listener).
    pub fn into_fd(self) -> io::Result<OwnedFd> {
        let fd = self.fd.into_inner();
        rustix::io::ioctl_fionbio(&fd, false)?;
        Ok(fd)
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                rustix::io::read(fd.get_ref(), &mut *unfilled).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // pty(7): reading a master whose slaves are all closed is EIO.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsFd for Console {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsyncRead for &Console {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for &Console {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Console {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for Console {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
