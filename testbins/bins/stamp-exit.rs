//! `stamp-exit`: writes `CLOCK_MONOTONIC` in ns (decimal digits and a
//! newline) to its stdout, then calls `exit_group(0)`. Its arguments are
//! ignored.
//!
//! The exit → wake-up bench runs it. Like `true`, it links neither std nor
//! libc (see `bins/true.rs`): besides libc's start-up, a std binary maps
//! about a megabyte of code whose page tables and mappings the kernel tears
//! down inside the exit being timed, a cost of the workload and not of the
//! runtime. `probe stamp-exit` does the same with std, for comparison.

#![no_std]
#![no_main]

#[path = "shared/raw.rs"]
mod raw;

// The entry point calls `stamp` with the stack as the kernel left it:
// 16-byte aligned before the call, as the C ABI wants.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(".globl _start", "_start:", "xor ebp, ebp", "call {}", sym stamp);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(".globl _start", "_start:", "mov x29, #0", "bl {}", sym stamp);

extern "C" fn stamp() -> ! {
    const CLOCK_MONOTONIC: usize = 1;
    let mut ts = [0i64; 2];
    // SAFETY: clock_gettime(2) writes one `struct timespec` (two i64 on
    // both architectures) at the pointer, which points at `ts`.
    let ret = unsafe {
        raw::syscall3_raw(raw::CLOCK_GETTIME, CLOCK_MONOTONIC, ts.as_mut_ptr() as usize, 0)
    };
    let mut status = 0;
    if ret == 0 {
        let ns = (ts[0] as u64).wrapping_mul(1_000_000_000).wrapping_add(ts[1] as u64);
        let mut buf = [0u8; 24];
        let start = decimal(ns, &mut buf);
        let len = buf.len() - start;
        // SAFETY: write(2) reads `len` initialised bytes of `buf` from
        // `start`, its last `len` bytes.
        let wrote =
            unsafe { raw::syscall3_raw(raw::WRITE, 1, buf.as_ptr() as usize + start, len) };
        if wrote != len as isize {
            status = 1;
        }
    } else {
        status = 1;
    }
    // SAFETY: exit_group(2) takes a status and does not return.
    unsafe { raw::syscall3_raw(raw::EXIT_GROUP, status, 0, 0) };
    loop {}
}

/// Writes `n` in decimal and a newline at the end of `buf`; returns where
/// the digits start. 20 digits hold any u64, and every index stays below
/// 24, so nothing here can panic (a panic would need the unwinding support
/// that this binary does not link).
fn decimal(mut n: u64, buf: &mut [u8; 24]) -> usize {
    buf[23] = b'\n';
    let mut start = 23;
    for i in (0..23).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        start = i;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    start
}

/// Never reached: nothing here can panic.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
