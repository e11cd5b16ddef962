//! The frame format, and sending and receiving one frame with its fds.
//!
//! One frame is one `SOCK_SEQPACKET` datagram: an 8-byte header, then a
//! serde_json body; fds ride on the same `sendmsg` as `SCM_RIGHTS`.
//!
//! ```text
//! byte 0     version (VERSION)
//! byte 1     kind    (Kind: 1-6 to the init, 16-21 to the parent)
//! bytes 2..4 reserved, must be 0
//! bytes 4..8 body length, u32 little-endian, at most MAX_BODY
//! ```
//!
//! Decoding is the pure function [`decode_frame`], so that it can be tested
//! and fuzzed without sockets. This module does not know the order in which
//! messages are sent; that is the channel ends' job (`channel`).

use std::os::fd::{BorrowedFd, OwnedFd};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::messages::{ToInit, ToParent};
use crate::sys;

/// Protocol version, byte 0 of every header.
pub const VERSION: u8 = 2;
/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 8;
/// Largest body accepted, in bytes. Below the default `wmem_default`
/// (212992), so that one frame always fits the socket's send buffer.
pub const MAX_BODY: usize = 128 * 1024;
/// Number of fds a receiver makes room for (no kind carries more than 1).
/// A frame with more is refused, as [`Error::ControlTruncated`] when they
/// overflow the control buffer or [`Error::UnexpectedFds`] when they fit
/// its alignment padding.
pub const MAX_FDS: usize = 16;

/// The kind byte of a frame: which message it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// [`ToInit::Spec`].
    Spec = 1,
    /// [`ToInit::Start`].
    Start = 2,
    /// [`ToInit::StartWith`].
    StartWith = 3,
    /// [`ToInit::Exec`].
    Exec = 4,
    /// [`ToInit::HooksDone`].
    HooksDone = 5,
    /// [`ToInit::MountFd`].
    MountFd = 6,
    /// [`ToInit::Spawn`].
    Spawn = 7,
    /// [`ToInit::JoinCgroup`].
    JoinCgroup = 8,
    /// [`ToParent::Ready`].
    Ready = 16,
    /// [`ToParent::Error`].
    Error = 17,
    /// [`ToParent::Log`].
    Log = 18,
    /// [`ToParent::Console`].
    Console = 19,
    /// [`ToParent::ExecPid`].
    ExecPid = 20,
    /// [`ToParent::RunHooks`].
    RunHooks = 21,
    /// [`ToParent::SeccompListener`].
    SeccompListener = 22,
    /// [`ToParent::RootfsReady`].
    RootfsReady = 23,
}

impl Kind {
    /// The kind for a header byte, of either direction.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Spec,
            2 => Kind::Start,
            3 => Kind::StartWith,
            4 => Kind::Exec,
            5 => Kind::HooksDone,
            6 => Kind::MountFd,
            7 => Kind::Spawn,
            8 => Kind::JoinCgroup,
            16 => Kind::Ready,
            17 => Kind::Error,
            18 => Kind::Log,
            19 => Kind::Console,
            20 => Kind::ExecPid,
            21 => Kind::RunHooks,
            22 => Kind::SeccompListener,
            23 => Kind::RootfsReady,
            _ => return None,
        })
    }

    /// How many fds a frame of this kind carries.
    pub fn fds(self) -> FdCount {
        match self {
            Kind::Spec => FdCount::ZeroOrOne,
            Kind::Spawn => FdCount::OneOrMore,
            Kind::JoinCgroup => FdCount::ZeroOrMore,
            Kind::Console | Kind::Exec | Kind::ExecPid | Kind::MountFd | Kind::SeccompListener => {
                FdCount::One
            }
            Kind::Start
            | Kind::StartWith
            | Kind::HooksDone
            | Kind::Ready
            | Kind::Error
            | Kind::Log
            | Kind::RunHooks
            | Kind::RootfsReady => FdCount::Zero,
        }
    }

    /// The snake_case name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spec => "spec",
            Kind::Start => "start",
            Kind::StartWith => "start_with",
            Kind::Ready => "ready",
            Kind::Error => "error",
            Kind::Log => "log",
            Kind::Console => "console",
            Kind::Exec => "exec",
            Kind::ExecPid => "exec_pid",
            Kind::HooksDone => "hooks_done",
            Kind::MountFd => "mount_fd",
            Kind::Spawn => "spawn",
            Kind::JoinCgroup => "join_cgroup",
            Kind::RunHooks => "run_hooks",
            Kind::SeccompListener => "seccomp_listener",
            Kind::RootfsReady => "rootfs_ready",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How many fds a message kind carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdCount {
    /// None.
    Zero,
    /// Exactly one.
    One,
    /// None or one.
    ZeroOrOne,
    /// At least one, at most [`MAX_FDS`].
    OneOrMore,
    /// Any number up to [`MAX_FDS`].
    ZeroOrMore,
}

impl FdCount {
    /// Whether `n` fds are allowed.
    pub fn allows(self, n: usize) -> bool {
        match self {
            FdCount::Zero => n == 0,
            FdCount::One => n == 1,
            FdCount::ZeroOrOne => n <= 1,
            FdCount::OneOrMore => (1..=MAX_FDS).contains(&n),
            FdCount::ZeroOrMore => n <= MAX_FDS,
        }
    }
}

impl std::fmt::Display for FdCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FdCount::Zero => "0",
            FdCount::One => "exactly 1",
            FdCount::ZeroOrOne => "0 or 1",
            FdCount::OneOrMore => "1 or more",
            FdCount::ZeroOrMore => "0 or more",
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ToInit {}
    impl Sealed for crate::ToParent {}
}

/// A message of one direction: [`ToInit`] or [`ToParent`]. Sealed.
pub trait Message: Sized + sealed::Sealed {
    /// This message's kind.
    fn kind(&self) -> Kind;
    /// Whether `kind` belongs to this direction.
    fn has_kind(kind: Kind) -> bool;
    /// Appends the JSON body (nothing for bodiless kinds) to `out`.
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<()>;
    /// Decodes the body of a frame of `kind`; a kind of the other direction
    /// is [`Error::UnknownKind`].
    fn decode_body(kind: Kind, body: &[u8]) -> Result<Self>;
}

impl Message for ToInit {
    fn kind(&self) -> Kind {
        match self {
            ToInit::Spec(_) => Kind::Spec,
            ToInit::Start => Kind::Start,
            ToInit::StartWith(_) => Kind::StartWith,
            ToInit::Exec(_) => Kind::Exec,
            ToInit::HooksDone => Kind::HooksDone,
            ToInit::MountFd(_) => Kind::MountFd,
            ToInit::Spawn(_) => Kind::Spawn,
            ToInit::JoinCgroup(_) => Kind::JoinCgroup,
        }
    }

    fn has_kind(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Spec
                | Kind::Start
                | Kind::StartWith
                | Kind::Exec
                | Kind::HooksDone
                | Kind::MountFd
                | Kind::Spawn
                | Kind::JoinCgroup
        )
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            ToInit::Spec(spec) => encode_json(Kind::Spec, &**spec, out),
            ToInit::StartWith(process) => encode_json(Kind::StartWith, &**process, out),
            ToInit::Start | ToInit::HooksDone => Ok(()),
            ToInit::Exec(spec) => encode_json(Kind::Exec, &**spec, out),
            ToInit::MountFd(fd) => encode_json(Kind::MountFd, fd, out),
            ToInit::Spawn(req) => encode_json(Kind::Spawn, req, out),
            ToInit::JoinCgroup(join) => encode_json(Kind::JoinCgroup, join, out),
        }
    }

    fn decode_body(kind: Kind, body: &[u8]) -> Result<Self> {
        match kind {
            Kind::Spec => Ok(ToInit::Spec(Box::new(decode_json(kind, body)?))),
            Kind::Start => decode_empty(kind, body).map(|()| ToInit::Start),
            Kind::StartWith => Ok(ToInit::StartWith(Box::new(decode_json(kind, body)?))),
            Kind::Exec => Ok(ToInit::Exec(Box::new(decode_json(kind, body)?))),
            Kind::HooksDone => decode_empty(kind, body).map(|()| ToInit::HooksDone),
            Kind::MountFd => Ok(ToInit::MountFd(decode_json(kind, body)?)),
            Kind::Spawn => Ok(ToInit::Spawn(decode_json(kind, body)?)),
            Kind::JoinCgroup => Ok(ToInit::JoinCgroup(decode_json(kind, body)?)),
            other => Err(Error::UnknownKind { kind: other as u8 }),
        }
    }
}

impl Message for ToParent {
    fn kind(&self) -> Kind {
        match self {
            ToParent::Ready => Kind::Ready,
            ToParent::Error(_) => Kind::Error,
            ToParent::Log(_) => Kind::Log,
            ToParent::Console => Kind::Console,
            ToParent::ExecPid(_) => Kind::ExecPid,
            ToParent::RunHooks => Kind::RunHooks,
            ToParent::SeccompListener => Kind::SeccompListener,
            ToParent::RootfsReady => Kind::RootfsReady,
        }
    }

    fn has_kind(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Ready
                | Kind::Error
                | Kind::Log
                | Kind::Console
                | Kind::ExecPid
                | Kind::RunHooks
                | Kind::SeccompListener
                | Kind::RootfsReady
        )
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            ToParent::Error(error) => encode_json(Kind::Error, error, out),
            ToParent::Log(record) => encode_json(Kind::Log, record, out),
            ToParent::ExecPid(pid) => encode_json(Kind::ExecPid, pid, out),
            ToParent::Ready
            | ToParent::Console
            | ToParent::RunHooks
            | ToParent::SeccompListener
            | ToParent::RootfsReady => Ok(()),
        }
    }

    fn decode_body(kind: Kind, body: &[u8]) -> Result<Self> {
        match kind {
            Kind::Ready => decode_empty(kind, body).map(|()| ToParent::Ready),
            Kind::Error => Ok(ToParent::Error(decode_json(kind, body)?)),
            Kind::Log => Ok(ToParent::Log(decode_json(kind, body)?)),
            Kind::Console => decode_empty(kind, body).map(|()| ToParent::Console),
            Kind::ExecPid => Ok(ToParent::ExecPid(decode_json(kind, body)?)),
            Kind::RunHooks => decode_empty(kind, body).map(|()| ToParent::RunHooks),
            Kind::SeccompListener => decode_empty(kind, body).map(|()| ToParent::SeccompListener),
            Kind::RootfsReady => decode_empty(kind, body).map(|()| ToParent::RootfsReady),
            other => Err(Error::UnknownKind { kind: other as u8 }),
        }
    }
}

fn encode_json<T: Serialize>(kind: Kind, value: &T, out: &mut Vec<u8>) -> Result<()> {
    serde_json::to_writer(out, value).map_err(|source| Error::Encode { kind, source })
}

fn decode_json<T: DeserializeOwned>(kind: Kind, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| Error::Decode { kind, source })
}

fn decode_empty(kind: Kind, body: &[u8]) -> Result<()> {
    if body.is_empty() {
        return Ok(());
    }
    let source = serde::de::Error::custom("a body on a message kind that has none");
    Err(Error::Decode { kind, source })
}

/// Encodes `msg` as one frame: header then body.
pub fn encode_frame<M: Message>(msg: &M) -> Result<Vec<u8>> {
    let mut frame = vec![0; HEADER_LEN];
    msg.encode_body(&mut frame)?;
    let len = frame.len() - HEADER_LEN;
    if len > MAX_BODY {
        return Err(Error::Oversized { len, max: MAX_BODY });
    }
    frame[0] = VERSION;
    frame[1] = msg.kind() as u8;
    let len = u32::try_from(len).expect("MAX_BODY fits in u32");
    frame[4..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// Decodes one received datagram and the fds that came with it.
///
/// Checks, in order: header length, version, reserved field, declared body
/// length against [`MAX_BODY`] and against the datagram, kind (of this
/// direction), fd count, body. On error every fd in `fds` is closed.
pub fn decode_frame<M: Message>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(M, Vec<OwnedFd>)> {
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(Error::Truncated {
            got: bytes.len(),
            need: HEADER_LEN,
        });
    };
    if header[0] != VERSION {
        return Err(Error::UnknownVersion { version: header[0] });
    }
    let reserved = u16::from_le_bytes([header[2], header[3]]);
    if reserved != 0 {
        return Err(Error::Reserved { value: reserved });
    }
    let declared = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if declared > MAX_BODY {
        return Err(Error::Oversized {
            len: declared,
            max: MAX_BODY,
        });
    }
    if body.len() < declared {
        return Err(Error::Truncated {
            got: bytes.len(),
            need: HEADER_LEN + declared,
        });
    }
    if body.len() > declared {
        return Err(Error::LengthMismatch {
            declared,
            got: body.len(),
        });
    }
    let kind = Kind::from_byte(header[1])
        .filter(|kind| M::has_kind(*kind))
        .ok_or(Error::UnknownKind { kind: header[1] })?;
    if !kind.fds().allows(fds.len()) {
        return Err(Error::UnexpectedFds {
            kind,
            expected: kind.fds(),
            got: fds.len(),
        });
    }
    Ok((M::decode_body(kind, body)?, fds))
}

/// Sends `msg` with `fds` as one datagram on `sock`.
///
/// Refuses, before any syscall, an fd count the kind does not allow and a
/// body over [`MAX_BODY`]. On a non-blocking socket `EAGAIN` comes back as
/// [`Error::Io`] (see [`Error::is_would_block`]); `EINTR` is retried.
pub fn send<M: Message>(sock: BorrowedFd<'_>, msg: &M, fds: &[BorrowedFd<'_>]) -> Result<()> {
    let kind = msg.kind();
    if !kind.fds().allows(fds.len()) {
        return Err(Error::UnexpectedFds {
            kind,
            expected: kind.fds(),
            got: fds.len(),
        });
    }
    let frame = encode_frame(msg)?;
    let sent = sys::send_with_fds(sock, &frame, fds)?;
    // SOCK_SEQPACKET sends a datagram whole or not at all (EMSGSIZE, EAGAIN).
    debug_assert_eq!(sent, frame.len(), "seqpacket sendmsg is atomic");
    Ok(())
}

/// Receives one message and its fds from `sock`.
///
/// The fds are `CLOEXEC`. A peer that closed its end is [`Error::Closed`];
/// every other refusal is the matching [`Error`] variant, and on every
/// error all received fds are closed. On a non-blocking socket `EAGAIN`
/// comes back as [`Error::Io`]; `EINTR` is retried.
pub fn recv<M: Message>(sock: BorrowedFd<'_>) -> Result<(M, Vec<OwnedFd>)> {
    RECV_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let (len, fds) = sys::recv_with_fds(sock, &mut buf)?;
        if len == 0 {
            return Err(Error::Closed);
        }
        decode_frame(&buf[..len], fds)
    })
}

thread_local! {
    /// The receive buffer, one per thread, zeroed once: a frame is decoded
    /// out of it before the thread receives again. (A fresh zeroed buffer
    /// per message cost a 128 KiB `memset` each, several times per
    /// container in the runtime and in the init.) One byte more than the
    /// largest valid frame, so that an oversized datagram shows up as such
    /// instead of being cut to a valid length.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0; HEADER_LEN + MAX_BODY + 1]);
}

/// A connected `AF_UNIX` `SOCK_SEQPACKET` pair, both ends `CLOEXEC` and
/// blocking.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    sys::socketpair_seqpacket()
}

#[cfg(test)]
mod tests;
