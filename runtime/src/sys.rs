//! The runtime's only unsafe code: `clone3` and what the child does before
//! it execs `corral-init`, plus the few calls rustix does not wrap.
//!
//! Between `clone3` and `execve` the child is a copy of a multi-threaded
//! process in which only the calling thread exists: any lock another thread
//! held (the allocator's, tracing's) stays held forever. So the child path
//! ([`child_after_clone`]) makes only raw, async-signal-safe system calls on
//! data the parent prepared: no allocation, no locks, no logging. Everything
//! else happens in `corral-init`.
//!
//! Nothing here returns a `RawFd` to the rest of the crate.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::process::Pid;

/// `struct clone_args` from `<linux/sched.h>` (version 2, 88 bytes): the
/// same layout on every architecture, every field a `__aligned_u64`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
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
    /// v2: the container's cgroup directory, for `CLONE_INTO_CGROUP`.
    pub cgroup_dir: Option<BorrowedFd<'a>>,
    /// v1: `cgroup.procs` of each of the container's hierarchies, open for
    /// writing; the child writes `0` (itself) to each before anything else.
    pub cgroup_procs: &'a [BorrowedFd<'a>],
    /// `unshare(CLONE_NEWCGROUP)` once placed, so that the namespace's root
    /// is the container's cgroup (at `clone3` time it would be ours).
    pub unshare_cgroupns: bool,
}

/// `CLONE_INTO_CGROUP` from `<linux/sched.h>` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A new child: its host pid and a pidfd.
pub struct Spawned {
    /// Host pid.
    pub pid: Pid,
    /// pidfd (close-on-exec, as `CLONE_PIDFD` makes it).
    pub pidfd: OwnedFd,
}

/// `clone3(2)` with `CLONE_PIDFD` and `flags` (namespace bits), then, in
/// the child, [`child_after_clone`]. Fork-like: no `CLONE_VM`, so the child
/// runs on a copy-on-write copy of the calling thread's stack.
pub fn spawn_init(namespace_flags: u64, plan: &ChildPlan<'_>) -> io::Result<Spawned> {
    debug_assert!(plan.argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(plan.envp.last().is_some_and(|p| p.is_null()));
    let mut pidfd: RawFd = -1;
    let (into_cgroup, cgroup) = match plan.cgroup_dir {
        Some(fd) => (CLONE_INTO_CGROUP, fd.as_raw_fd() as u64),
        None => (0, 0),
    };
    let args = CloneArgs {
        flags: namespace_flags | libc::CLONE_PIDFD as u64 | into_cgroup,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup,
        ..CloneArgs::default()
    };
    // SAFETY: clone3(2) with a valid, fully initialised `clone_args` of the
    // size we pass. No CLONE_VM and no stack: the child continues here on a
    // private copy of this thread's stack, like fork(2). In the child we call
    // only `child_after_clone`, which never returns and makes only
    // async-signal-safe syscalls on memory prepared before the clone.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => child_after_clone(plan),
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

/// The child between `clone3` and `execve`. Never returns: on any failure
/// it `_exit`s with the errno as its status, which the parent reports when
/// the init socket closes before the init could speak.
fn child_after_clone(plan: &ChildPlan<'_>) -> ! {
    // SAFETY: every call below is a raw syscall listed as async-signal-safe
    // in signal-safety(7) (prctl, write, fcntl, dup2, execve, _exit) or a
    // thin wrapper of one (unshare, execveat via syscall(2)); the fds and
    // strings were prepared by the parent and stay valid: this process has
    // its own copy of the parent's memory.
    unsafe {
        // v1 placement, first of all, so that nothing the child does is
        // charged to the runtime's cgroup. The child moves itself ("0" is
        // the writer, cgroups(7)), rather than the parent writing its pid
        // after clone3: that would race with the child running on into
        // corral-init, and a pipe handshake to close the race costs a
        // round trip for nothing.
        for fd in plan.cgroup_procs {
            if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                child_fail();
            }
        }
        if plan.unshare_cgroupns && libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            child_fail();
        }
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

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` for any signal number,
/// real-time ones included (rustix's `Signal` only names the classic set).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal(2) with a live pidfd, a NULL siginfo (the
    // kernel fills it as for kill(2)) and no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An fd owner whose `as_raw_fd` is one open fd for its whole life: what
/// tokio's `AsyncFd::register` requires of its argument.
pub trait StableFd: std::os::fd::AsRawFd {}

impl StableFd for OwnedFd {}

// `ParentEnd` wraps an `OwnedFd` that it never replaces or closes before
// drop (corral-protocol's channel.rs).
impl StableFd for corral_protocol::ParentEnd {}

/// Registers `inner` with the current tokio reactor.
pub fn register<T: StableFd>(
    inner: T,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: `StableFd` is implemented only for owners of one open fd that
    // stays open and unchanged until they are dropped, which is the
    // contract of `AsyncFd::register_with_interest`.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(inner, interest) }
        .map_err(io::Error::from)
}
