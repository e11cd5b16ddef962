//! `true`: exits 0 and ignores its arguments.
//!
//! Built by `testbins/build.rs` as a static executable with neither std
//! nor libc: its entry point is the `exit_group(0)` system call. A `true`
//! linked with std and static glibc spends about 0.3 ms of each run in
//! libc's start-up on this project's VMs (cache and CPU-feature probing
//! through `cpuid`, which exits to the hypervisor), as long as a whole
//! container start; the start-up benches run this one so that they time
//! the runtime, not libc.

#![no_std]
#![no_main]

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov eax, 231", // exit_group
    "xor edi, edi",
    "syscall",
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov x8, #94", // exit_group
    "mov x0, #0",
    "svc #0",
);

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("bins/true.rs has an entry point for x86_64 and aarch64 only");

/// Never reached: nothing here can panic.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
