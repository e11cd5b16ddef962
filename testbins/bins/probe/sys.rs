//! probe's raw syscalls (std wraps none of these): the calls and numbers of
//! `shared/raw.rs`, wrappers for integer-only calls, and the -errno
//! convention.

use std::io;

pub use crate::raw::*;

/// A raw syscall whose arguments are plain integers (no pointers).
pub fn syscall3(nr: usize, a0: usize, a1: usize, a2: usize) -> isize {
    // SAFETY: callers pass only calls that take integers by value, so no
    // memory of this process is read or written.
    unsafe { syscall3_raw(nr, a0, a1, a2) }
}

/// `exit_group(code)` with nothing run before it: no libc `atexit`
/// handlers, no std clean-up, no stdout flush.
pub fn exit_group(code: i32) -> ! {
    syscall3(EXIT_GROUP, code as usize, 0, 0);
    unreachable!("exit_group returned")
}

/// Raw syscalls return -errno in [-4095, -1] on failure.
pub fn result(ret: isize) -> io::Result<()> {
    if (-4095..0).contains(&ret) {
        Err(io::Error::from_raw_os_error(-ret as i32))
    } else {
        Ok(())
    }
}

/// A raw syscall's non-negative result, or its -errno as an error.
pub fn value(ret: isize) -> io::Result<usize> {
    result(ret).map(|()| ret as usize)
}
