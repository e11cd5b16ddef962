//! corral-protocol: what crosses the socket between the corral runtime and
//! its init, and nothing more.
//!
//! One `SOCK_SEQPACKET` socketpair per container. A frame is an 8-byte
//! header (version, kind, reserved, body length) followed by a serde_json
//! body; fds travel as `SCM_RIGHTS` on the same `sendmsg`. Both ends reject
//! frames that are oversized, truncated, of an unknown version or kind, or
//! carry an unexpected number of fds, with a typed [`Error`] and with every
//! received fd closed.
//!
//! This crate has no async code and no OCI types. Non-blocking sockets get
//! `WouldBlock` back as [`Error::Io`]; looping or awaiting is the caller's job.

mod channel;
mod error;
mod frame;
mod messages;
mod sys;

pub use channel::{InitChannel, ParentEnd, Request};
pub use error::{Error, Result};
pub use frame::{
    FdCount, HEADER_LEN, Kind, MAX_BODY, MAX_FDS, Message, VERSION, decode_frame, encode_frame,
    recv, send, socketpair,
};
pub use messages::*;
