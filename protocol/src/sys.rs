//! Thin wrappers over the socket calls: `socketpair`, `sendmsg` and
//! `recvmsg` with `SCM_RIGHTS`.
//!
//! This module owns the syscalls and their flags (`SOCK_CLOEXEC`,
//! `MSG_NOSIGNAL`, `MSG_CMSG_CLOEXEC`, `MSG_CTRUNC`) and the `EINTR` retry.
//! It knows nothing of frames. rustix covers every call, so there is no
//! `unsafe` here; if some call ever needs `libc`, it goes here, behind
//! `#[allow(unsafe_code)]`.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::error::{Error, Result};
use crate::frame::MAX_FDS;

/// Room for one `SCM_RIGHTS` message of [`MAX_FDS`] fds.
const CMSG_SPACE: usize = rustix::cmsg_space!(ScmRights(MAX_FDS));

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)`—see
/// [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html).
pub(crate) fn socketpair_seqpacket() -> Result<(OwnedFd, OwnedFd)> {
    rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|errno| Error::Io {
        op: "socketpair",
        errno,
    })
}

/// `sendmsg(sock, data, SCM_RIGHTS(fds), MSG_NOSIGNAL)`—see
/// [sendmsg(2)](https://man7.org/linux/man-pages/man2/sendmsg.2.html).
///
/// `MSG_NOSIGNAL`: a closed peer is `EPIPE`, not a `SIGPIPE` that kills the
/// init. Retries on `EINTR`; returns `EAGAIN` as it is.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<usize> {
    let mut space = [MaybeUninit::<u8>::uninit(); CMSG_SPACE];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        let pushed = control.push(SendAncillaryMessage::ScmRights(fds));
        assert!(pushed, "callers pass at most MAX_FDS fds");
    }
    let iov = [IoSlice::new(data)];
    loop {
        match rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            other => {
                return other.map_err(|errno| Error::Io {
                    op: "sendmsg",
                    errno,
                });
            }
        }
    }
}

/// `recvmsg(sock, buf, MSG_CMSG_CLOEXEC)`—see
/// [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
///
/// Returns the byte count and the fds received, which are `CLOEXEC` from
/// the moment they exist (no window for a concurrent `fork`+`exec` to leak
/// them). `MSG_CTRUNC` means the kernel dropped fds that did not fit: that
/// is [`Error::ControlTruncated`], and the fds that did arrive are closed.
/// Retries on `EINTR`; returns `EAGAIN` as it is.
pub(crate) fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::<u8>::uninit(); CMSG_SPACE];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => {
                break other.map_err(|errno| Error::Io {
                    op: "recvmsg",
                    errno,
                })?;
            }
        }
    };
    // Take ownership of every fd before any check, so that each error
    // path below closes them by dropping the Vec.
    let mut fds = Vec::new();
    for cmsg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = cmsg {
            fds.extend(rights);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(Error::ControlTruncated);
    }
    Ok((msg.bytes, fds))
}
