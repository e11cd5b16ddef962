//! Small `/proc` files read in one `read(2)`.
//!
//! `std::fs::read_to_string` reads a file of unknown size in growing
//! chunks (32, 64, 128 bytes...), eight calls for `/proc/self/status`; a
//! `/proc` file that fits the buffer comes whole from one call.

use std::ffi::CStr;

use rustix::fs::{Mode, OFlags, open};

/// The contents of `path` if they fit `buf` (a file that fills it is
/// treated as too big); `None` if it cannot be opened or read.
pub fn read<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let n = rustix::io::read(&fd, &mut *buf).ok()?;
    (n < buf.len()).then_some(&buf[..n])
}
