//! `clone3` and what the child does before it execs `corral-init`.
//!
//! Between `clone3` and `execve` the child is a copy of a multi-threaded
//! process in which only the calling thread exists: any lock another thread
//! held (the allocator's, tracing's) stays held forever. So the child path
//! ([`child_after_clone`]) makes only raw, async-signal-safe system calls on
//! data the parent prepared: no allocation, no locks, no logging.
//!
//! Two ways in. Where an assembly trampoline exists (x86_64, aarch64) the
//! child shares the parent's memory and the parent thread waits for its
//! exec (`CLONE_VM | CLONE_VFORK`, as `posix_spawn` does): no page tables
//! are copied, so spawning costs the same from a 16 MiB service as from a
//! 1 GiB one. Elsewhere, and where the child must wait for its parent
//! before exec (user namespaces), it is fork-like: a copy-on-write copy.

use std::ffi::{CStr, c_char};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::process::Pid;

/// `struct clone_args` from `<linux/sched.h>` (version 2, 88 bytes): the
/// same layout on every architecture, every field a `__aligned_u64`.
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// How the child reaches `corral-init`.
pub enum InitExec<'a> {
    /// `execveat(fd, "", AT_EMPTY_PATH)` of a sealed memfd.
    Fd(BorrowedFd<'a>),
    /// `execve(path)` of a file on the host.
    Path(&'a CStr),
}

/// Everything the child needs, prepared by the parent before `clone3` so
/// the child allocates nothing.
pub struct ChildPlan<'a> {
    /// Sources for fds 0, 1, 2; `None` keeps the parent's own.
    pub stdio: [Option<BorrowedFd<'a>>; 3],
    /// The init's end of the init socket.
    pub socket: BorrowedFd<'a>,
    /// The fd number the socket must have in the init (named in `argv`).
    pub socket_target: RawFd,
    /// The init binary.
    pub init: InitExec<'a>,
    /// NULL-terminated `argv` whose strings outlive the call.
    pub argv: &'a [*const c_char],
    /// NULL-terminated `envp`.
    pub envp: &'a [*const c_char],
    /// Set `PR_SET_PDEATHSIG(SIGKILL)` in the child.
    pub kill_on_parent_death: bool,
    /// Copy the address space (fork-like) instead of sharing it: needed
    /// when the child must wait for its parent before it execs.
    pub fork_like: bool,
}

/// A new child: its host pid and a pidfd.
pub struct Spawned {
    /// Host pid.
    pub pid: Pid,
    /// pidfd (close-on-exec, as `CLONE_PIDFD` makes it).
    pub pidfd: OwnedFd,
}

/// `clone3(2)` with `CLONE_PIDFD` and the namespace bits in
/// `namespace_flags`, then, in the child, [`child_after_clone`].
pub fn spawn_init(namespace_flags: u64, plan: &ChildPlan<'_>) -> io::Result<Spawned> {
    debug_assert!(plan.argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(plan.envp.last().is_some_and(|p| p.is_null()));
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: namespace_flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    let ret = if plan.fork_like || !vfork::AVAILABLE {
        clone_fork_like(&args, plan)
    } else {
        vfork::clone_shared(&mut args, plan)
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        pid => {
            debug_assert!(pidfd >= 0, "CLONE_PIDFD returns a pidfd");
            // SAFETY: the kernel stored a new fd in `pidfd` (CLONE_PIDFD,
            // clone(2)); nothing else owns it.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            let pid = Pid::from_raw(pid as i32).expect("clone3 returns a positive pid");
            Ok(Spawned { pid, pidfd })
        }
    }
}

/// The fork-like clone: returns the pid in the parent, -1 on error; the
/// child never returns.
fn clone_fork_like(args: &CloneArgs, plan: &ChildPlan<'_>) -> i64 {
    // SAFETY: clone3(2) with a valid, fully initialised `clone_args` of the
    // size we pass. No CLONE_VM and no stack: the child continues here on a
    // private copy of this thread's stack, like fork(2). In the child we call
    // only `child_after_clone`, which never returns and makes only
    // async-signal-safe syscalls on memory prepared before the clone.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == 0 {
        child_after_clone(plan)
    }
    ret
}

/// `CLONE_VM | CLONE_VFORK` through a small assembly trampoline: the child
/// runs [`child_after_clone`] on a stack of its own inside the parent's
/// address space, and the calling thread sleeps until the child has
/// exec'd (or exited). Every signal is blocked on this thread across the
/// call, so no handler of ours can run in the child on shared memory; the
/// child execs the init with them all blocked, and the init unblocks them
/// before it execs the workload.
mod vfork {
    use super::{ChildPlan, CloneArgs, child_after_clone};

    /// Whether this architecture has the trampoline.
    pub const AVAILABLE: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

    /// Bytes of stack for the child: it makes a handful of syscalls.
    const STACK: usize = 64 * 1024;

    extern "C" fn entry(plan: *const ChildPlan<'_>) -> ! {
        // SAFETY: `plan` is the reference `clone_shared` was given; with
        // CLONE_VFORK the parent's frame holding it stays alive (the parent
        // thread is suspended) until this child execs or exits.
        child_after_clone(unsafe { &*plan })
    }

    /// Returns the pid, or -1 with errno set.
    pub fn clone_shared(args: &mut CloneArgs, plan: &ChildPlan<'_>) -> i64 {
        let mut stack = vec![0u8; STACK];
        args.flags |= (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
        args.stack = stack.as_mut_ptr() as u64;
        // The kernel starts the child at stack + stack_size; keep it
        // 16-byte aligned as both ABIs require.
        args.stack_size = (STACK - (stack.as_ptr() as usize + STACK) % 16) as u64;
        let all = signal_set_full();
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: pthread_sigmask(3) with valid set pointers; restored below.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, old.as_mut_ptr()) };
        let ret = raw_clone3(args, plan);
        // SAFETY: `old` was filled by the call above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
        drop(stack);
        if ret < 0 {
            // SAFETY: errno is this thread's; the raw syscall returned
            // -errno instead of setting it.
            unsafe { *libc::__errno_location() = -ret as i32 };
            return -1;
        }
        ret
    }

    fn signal_set_full() -> libc::sigset_t {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset(3) initialises the set it is given.
        unsafe {
            libc::sigfillset(set.as_mut_ptr());
            set.assume_init()
        }
    }

    /// The raw syscall; returns the pid or `-errno`. In the child, jumps
    /// to [`entry`] on the new stack and never comes back here.
    #[cfg(target_arch = "x86_64")]
    fn raw_clone3(args: &CloneArgs, plan: &ChildPlan<'_>) -> i64 {
        let ret: i64;
        // SAFETY: clone3(2) with CLONE_VM|CLONE_VFORK and a stack that
        // stays allocated until the parent resumes. The child keeps every
        // register but rax (0), rcx and r11, and starts on the new stack:
        // it calls `entry(plan)` from r12/r13 with rsp 16-byte aligned
        // before the call, as the SysV ABI wants, and `entry` never
        // returns. The parent path only sees rax, rcx and r11 change.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov rdi, r13",
                "call r12",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") args as *const CloneArgs,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                in("r12") entry as *const (),
                in("r13") plan as *const ChildPlan<'_>,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    #[cfg(target_arch = "aarch64")]
    fn raw_clone3(args: &CloneArgs, plan: &ChildPlan<'_>) -> i64 {
        let ret: i64;
        // SAFETY: as for x86_64: the kernel preserves every register but
        // x0 in the child, which starts on the new (16-byte aligned) stack
        // and branches to `entry(plan)` from x9/x10; `entry` never returns.
        unsafe {
            std::arch::asm!(
                "svc 0",
                "cbnz x0, 2f",
                "mov x0, x10",
                "blr x9",
                "brk #1",
                "2:",
                inlateout("x0") args as *const CloneArgs => ret,
                in("x1") std::mem::size_of::<CloneArgs>(),
                in("x8") libc::SYS_clone3,
                in("x9") entry as *const (),
                in("x10") plan as *const ChildPlan<'_>,
                options(nostack),
            );
        }
        ret
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn raw_clone3(_: &CloneArgs, _: &ChildPlan<'_>) -> i64 {
        unreachable!("AVAILABLE is false here")
    }
}

/// The child between `clone3` and `execve`. Never returns: on any failure
/// it `_exit`s with the errno as its status, which the parent reports when
/// the init socket closes before the init could speak.
pub(super) fn child_after_clone(plan: &ChildPlan<'_>) -> ! {
    // SAFETY: every call below is a raw syscall listed as async-signal-safe
    // in signal-safety(7) (prctl, fcntl, dup2, execve, _exit) or a thin
    // wrapper of one (execveat via syscall(2)); the fds and strings were
    // prepared by the parent and stay valid: this process has its own copy
    // of the parent's memory.
    unsafe {
        if plan.kill_on_parent_death && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            child_fail();
        }
        // Move every source out of 0..=target first, so that placing one
        // never clobbers another.
        let floor = plan.socket_target + 1;
        let mut sources = [-1; 4];
        for (slot, fd) in sources.iter_mut().zip(plan.stdio.iter()) {
            if let Some(fd) = fd {
                *slot = lift_fd(fd.as_raw_fd(), floor);
            }
        }
        sources[3] = lift_fd(plan.socket.as_raw_fd(), floor);
        let targets = [0, 1, 2, plan.socket_target];
        for (src, dst) in sources.iter().zip(targets) {
            // dup2 clears FD_CLOEXEC on the new fd, so these survive exec.
            if *src >= 0 && libc::dup2(*src, dst) < 0 {
                child_fail();
            }
        }
        match plan.init {
            InitExec::Fd(fd) => {
                libc::syscall(
                    libc::SYS_execveat,
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    plan.argv.as_ptr(),
                    plan.envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
            InitExec::Path(path) => {
                libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
            }
        }
        child_fail()
    }
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, floor)` when `fd < floor`. Child only.
///
/// # Safety
/// Only async-signal-safe calls; call only from the cloned child.
unsafe fn lift_fd(fd: RawFd, floor: RawFd) -> RawFd {
    if fd >= floor {
        return fd;
    }
    // SAFETY: fcntl(2) F_DUPFD_CLOEXEC on an fd the parent kept open.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
    if new < 0 {
        // SAFETY: see `child_fail`.
        unsafe { child_fail() }
    }
    new
}

/// `_exit(errno)`. Child only.
///
/// # Safety
/// Only async-signal-safe calls; call only from the cloned child.
unsafe fn child_fail() -> ! {
    // SAFETY: __errno_location() is the thread's errno slot; _exit(2) is
    // async-signal-safe and does not run atexit handlers or flush stdio
    // buffers that belong to the parent.
    unsafe {
        let errno = *libc::__errno_location();
        libc::_exit(errno.clamp(1, 255))
    }
}
