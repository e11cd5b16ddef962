//! Raw system calls for the test binaries that need more than std gives
//! (`probe`) or have no std at all (`stamp-exit`): one `asm!` block per
//! architecture, and the numbers. Core only, so a `#![no_std]` binary can
//! include it (`#[path = "shared/raw.rs"] mod raw;`). x86_64 and aarch64
//! only.

// Each binary uses its own part of it.
#![allow(dead_code)]

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the test binaries' raw syscalls cover x86_64 and aarch64 only");

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const WRITE: usize = 1;
    pub const IOCTL: usize = 16;
    pub const KILL: usize = 62;
    pub const SCHED_GETAFFINITY: usize = 204;
    pub const CLOCK_GETTIME: usize = 228;
    pub const EXIT_GROUP: usize = 231;
    pub const GET_MEMPOLICY: usize = 239;
    pub const IOPRIO_GET: usize = 252;
    pub const SCHED_GETATTR: usize = 315;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const WRITE: usize = 64;
    pub const IOCTL: usize = 29;
    pub const KILL: usize = 129;
    pub const SCHED_GETAFFINITY: usize = 123;
    pub const CLOCK_GETTIME: usize = 113;
    pub const EXIT_GROUP: usize = 94;
    pub const GET_MEMPOLICY: usize = 236;
    pub const IOPRIO_GET: usize = 31;
    pub const SCHED_GETATTR: usize = 275;
}

pub use nr::*;

/// A raw syscall with up to five integer or pointer arguments; returns the
/// raw result (-errno on failure).
///
/// # Safety
///
/// The caller passes a call whose pointer arguments, if any, point at live
/// memory of the size and layout the man page names for that call.
#[cfg(target_arch = "x86_64")]
pub unsafe fn syscall5_raw(
    nr: usize,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall ABI (syscall(2)) takes the number in rax
    // and arguments in rdi, rsi, rdx, r10 and r8, returns in rax and
    // clobbers rcx and r11; all are declared. Memory is not marked
    // untouched, since the kernel may write through a pointer argument,
    // which the caller vouches for (see `# Safety`). The kernel does not
    // use the user stack for the syscall itself.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// As for x86_64.
///
/// # Safety
///
/// As for x86_64.
#[cfg(target_arch = "aarch64")]
pub unsafe fn syscall5_raw(
    nr: usize,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 ABI (syscall(2)) takes the number in x8 and
    // arguments in x0-x4 and returns in x0; the caller vouches for pointer
    // arguments.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a0 as isize => ret,
            in("x1") a1,
            in("x2") a2,
            in("x3") a3,
            in("x4") a4,
            options(nostack),
        );
    }
    ret
}

/// [`syscall5_raw`] with three arguments (the others passed as 0, which
/// such calls ignore).
///
/// # Safety
///
/// As for [`syscall5_raw`].
pub unsafe fn syscall3_raw(nr: usize, a0: usize, a1: usize, a2: usize) -> isize {
    // SAFETY: the caller's obligations are those of syscall5_raw.
    unsafe { syscall5_raw(nr, a0, a1, a2, 0, 0) }
}
