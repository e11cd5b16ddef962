//! The crate's one error type.
//!
//! Every way a frame can be refused has its own variant, so that callers can
//! match on it; none of them is a panic. Causes are kept as `#[source]` and
//! never interpolated into the message.

use crate::frame::{FdCount, Kind};

/// Everything that can go wrong sending or receiving a frame.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A body larger than [`MAX_BODY`](crate::MAX_BODY), on either side.
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// Body length (declared in the header, or encoded).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The datagram is shorter than its header, or than the length the
    /// header declares.
    #[error("truncated frame of {got} bytes, need {need}")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the header (or the header itself) needs.
        need: usize,
    },
    /// The datagram is longer than the length its header declares.
    #[error("frame body of {got} bytes, but its header declares {declared}")]
    LengthMismatch {
        /// Body length declared in the header.
        declared: usize,
        /// Body bytes received.
        got: usize,
    },
    /// The header's version byte is not [`VERSION`](crate::VERSION).
    #[error("unknown protocol version {version}")]
    UnknownVersion {
        /// The version byte received.
        version: u8,
    },
    /// The kind byte names no message of the receiving direction.
    #[error("unknown message kind {kind}")]
    UnknownKind {
        /// The kind byte received.
        kind: u8,
    },
    /// The header's reserved field is not zero.
    #[error("nonzero reserved header field {value:#06x}")]
    Reserved {
        /// The reserved field, as a little-endian `u16`.
        value: u16,
    },
    /// A message with a number of fds its kind does not allow.
    #[error("{kind} message with {got} fds, expected {expected}")]
    UnexpectedFds {
        /// The message kind.
        kind: Kind,
        /// What the kind allows.
        expected: FdCount,
        /// fds received, or passed to send.
        got: usize,
    },
    /// `recvmsg` set `MSG_CTRUNC`: the peer sent more fds than fit.
    #[error("control message truncated (MSG_CTRUNC)")]
    ControlTruncated,
    /// The body is not valid JSON for its kind.
    #[error("decode {kind} message")]
    Decode {
        /// The message kind.
        kind: Kind,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The message could not be serialised.
    #[error("encode {kind} message")]
    Encode {
        /// The message kind.
        kind: Kind,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The peer closed its end: `recvmsg` returned 0 bytes.
    #[error("peer closed the socket")]
    Closed,
    /// A valid message that is not expected in the current state (for
    /// example `Start` before `Spec`).
    #[error("unexpected {kind} message")]
    Unexpected {
        /// The message kind.
        kind: Kind,
    },
    /// A socket call failed.
    #[error("{op}")]
    Io {
        /// The call (`sendmsg`, `recvmsg`, `socketpair`).
        op: &'static str,
        /// The errno it returned.
        #[source]
        errno: rustix::io::Errno,
    },
}

impl Error {
    /// Whether this is `EAGAIN`/`EWOULDBLOCK` from a non-blocking socket:
    /// wait for readiness and call again.
    pub fn is_would_block(&self) -> bool {
        matches!(self, Error::Io { errno, .. } if *errno == rustix::io::Errno::WOULDBLOCK)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
