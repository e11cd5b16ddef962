//! A seccomp user-notification agent for the tests: it accepts the
//! runtime's connection on `listenerPath`, takes the state JSON and the
//! notification fd, and answers each notified call with
//! `SECCOMP_IOCTL_NOTIF_RECV`/`SEND` (seccomp_unotify(2)) until the
//! filter has no more users.

#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::Context;
use rustix::event::{PollFd, PollFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::UnixListener;

/// `struct seccomp_notif` (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `_IOWR('!', 0, struct seccomp_notif)`.
const NOTIF_RECV: u64 = 0xC050_2100;
/// `_IOWR('!', 1, struct seccomp_notif_resp)`.
const NOTIF_SEND: u64 = 0xC018_2101;

/// The agent's reply to a call: `Err(errno)` or `Ok(return value)`.
pub type Answer = Result<i64, i32>;

/// Accepts one connection, returns the state JSON it carried and the
/// number of calls answered with `answer(syscall nr, args)`.
pub async fn serve(
    listener: UnixListener,
    answer: fn(i32, [u64; 6]) -> Answer,
) -> anyhow::Result<(serde_json::Value, usize)> {
    let (state, fd) = receive(&listener).await?;
    let answered = answer_until_gone(fd, answer).await?;
    Ok((state, answered))
}

/// Answers the calls notified on `fd` until its filter has no users left;
/// returns how many.
pub async fn answer_until_gone(
    fd: OwnedFd,
    answer: fn(i32, [u64; 6]) -> Answer,
) -> anyhow::Result<usize> {
    tokio::task::spawn_blocking(move || answer_all(&fd, answer)).await?
}

/// Accepts one connection: the state JSON and the notification fd.
pub async fn receive(listener: &UnixListener) -> anyhow::Result<(serde_json::Value, OwnedFd)> {
    let (mut stream, _) = listener.accept().await?;
    let mut first = vec![0u8; 64 * 1024];
    let (n, fd) = stream
        .async_io(Interest::READABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let got = rustix::net::recvmsg(
                stream.as_fd(),
                &mut [IoSliceMut::new(&mut first)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            let mut fds: Vec<OwnedFd> = Vec::new();
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(rights) = msg {
                    fds.extend(rights);
                }
            }
            Ok((got.bytes, fds))
        })
        .await?;
    anyhow::ensure!(fd.len() == 1, "{} fds with the state", fd.len());
    let fd = fd.into_iter().next().expect("one fd");
    let mut body = first[..n].to_vec();
    stream.read_to_end(&mut body).await?;
    let state: serde_json::Value = serde_json::from_slice(&body).context("state JSON")?;
    Ok((state, fd))
}

fn answer_all(fd: &OwnedFd, answer: fn(i32, [u64; 6]) -> Answer) -> anyhow::Result<usize> {
    let mut answered = 0;
    loop {
        let mut pfd = [PollFd::new(fd, PollFlags::IN)];
        rustix::event::poll(&mut pfd, None)?;
        let revents = pfd[0].revents();
        if !revents.contains(PollFlags::IN) {
            // POLLHUP: every task of the filter is gone.
            return Ok(answered);
        }
        let mut n = Notif::default();
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes one zeroed-on-entry
        // `struct seccomp_notif` (seccomp_unotify(2)); `n` is one, with the
        // kernel's layout, alive for the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut n as *mut Notif) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // ENOENT: the caller died before we took it.
            if e.raw_os_error() == Some(libc::ENOENT) {
                continue;
            }
            return Err(e.into());
        }
        let (val, error) = match answer(n.nr, n.args) {
            Ok(v) => (v, 0),
            Err(errno) => (0, -errno),
        };
        let mut resp = NotifResp {
            id: n.id,
            val,
            error,
            flags: 0,
        };
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads one `struct
        // seccomp_notif_resp` (seccomp_unotify(2)); `resp` is one, alive
        // for the call.
        let r =
            unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &mut resp as *mut NotifResp) };
        if r == 0 {
            answered += 1;
        }
    }
}
