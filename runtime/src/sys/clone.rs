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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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
    /// Read end of a pipe the child blocks on before the exec of the init,
    /// until the parent has written its user namespace's id maps: an exec
    /// by an unmapped uid would drop every capability. One byte means go;
    /// EOF (the parent gave up) makes the child `_exit`.
    pub wait_for_maps: Option<BorrowedFd<'a>>,
    /// Namespaces the child joins with `setns(fd, type)`, in order (a user
    /// namespace first). Not pid: see `join_pid`.
    pub join: &'a [(BorrowedFd<'a>, i32)],
    /// Become uid/gid 0 after joining (a joined user namespace).
    pub become_root: bool,
    /// `unshare(CLONE_NEWTIME)` in the child and write these bytes (maybe
    /// none) to `/proc/self/timens_offsets`; the exec enters the namespace.
    pub new_time: Option<&'a [u8]>,
    /// A pid namespace the cloning thread joins just around `clone3`, so
    /// that the child is born in it (setns(2): a pid namespace applies to
    /// the caller's children only).
    pub join_pid: Option<BorrowedFd<'a>>,
    /// A cgroup v2 directory to create the child in (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<BorrowedFd<'a>>,
    /// v1: `tasks` of each of the container's hierarchies, open for
    /// writing; the child writes `0` (itself) to each before anything else.
    pub cgroup_tasks: &'a [BorrowedFd<'a>],
    /// `sched_setaffinity(0, ..)` before anything else, the cgroup writes
    /// included (exec's `execCPUAffinity.initial`).
    pub initial_affinity: Option<&'a libc::cpu_set_t>,
    /// `unshare(CLONE_NEWCGROUP)` once placed, so that the namespace's root
    /// is the container's cgroup (at `clone3` time it would be ours).
    pub unshare_cgroupns: bool,
}

impl<'a> ChildPlan<'a> {
    /// A child that joins, waits for and unshares nothing, has no cgroup
    /// of its own and dies with its parent: `stdio` on fds 0-2, `socket` on
    /// fd 3, then the exec of `init`. Callers change the rest with struct
    /// update syntax.
    pub fn plain(
        stdio: [Option<BorrowedFd<'a>>; 3],
        socket: BorrowedFd<'a>,
        init: InitExec<'a>,
        argv: &'a [*const c_char],
        envp: &'a [*const c_char],
    ) -> Self {
        ChildPlan {
            stdio,
            socket,
            socket_target: crate::container::INIT_SOCKET_FD,
            init,
            argv,
            envp,
            kill_on_parent_death: true,
            wait_for_maps: None,
            join: &[],
            become_root: false,
            new_time: None,
            join_pid: None,
            cgroup: None,
            cgroup_tasks: &[],
            initial_affinity: None,
            unshare_cgroupns: false,
        }
    }
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
    match plan.join_pid {
        None => clone_init(namespace_flags, plan),
        Some(target) => {
            // The active pid namespace of this thread, to come back to.
            let own = rustix::fs::open(
                "/proc/thread-self/ns/pid",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
            move_into_link_name_space(target, Some(LinkNameSpaceType::ProcessID))?;
            let spawned = clone_init(namespace_flags, plan);
            move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::ProcessID))
                .expect("a thread can always return to its own active pid namespace");
            spawned
        }
    }
}

/// The `clone3` of [`spawn_init`].
fn clone_init(namespace_flags: u64, plan: &ChildPlan<'_>) -> io::Result<Spawned> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: namespace_flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(cgroup) = plan.cgroup {
        // CLONE_INTO_CGROUP is bit 33 (<linux/sched.h>): it does not fit
        // libc's c_int constant.
        args.flags |= 0x2_0000_0000;
        args.cgroup = cgroup.as_raw_fd() as u64;
    }
    // Sharing memory means the parent thread sleeps until the child's
    // exec; a child that waits for the parent (id maps) or changes its
    // namespaces and credentials first gets its own copy instead.
    let fork_like = plan.wait_for_maps.is_some()
        || !plan.join.is_empty()
        || plan.become_root
        || plan.new_time.is_some();
    let ret = if fork_like || !vfork::AVAILABLE {
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
    // in signal-safety(7) (prctl, read, write, fcntl, dup2, execve, _exit), or a
    // thin libc wrapper that only traps and takes no lock (setns, unshare,
    // syscall(2) for setresuid/setresgid, which change this thread's, the
    // only thread's, credentials, and execveat); the fds and strings were
    // prepared by the parent and stay valid: this process either has its
    // own copy of the parent's memory, or shares it while the parent
    // thread sleeps in CLONE_VFORK until this exec (and no other thread
    // touches what the plan points to).
    unsafe {
        // v1 placement, first of all, so that nothing the child does is
        // charged to the runtime's cgroup (unless the cgroup comes at
        // sync 0b, see create.rs). The child moves itself ("0" is
        // the writer, cgroups(7)), rather than the parent writing its pid
        // after clone3: that would race with the child running on into
        // corral-init, and a pipe handshake to close the race costs a
        // round trip for nothing.
        if let Some(set) = plan.initial_affinity {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0 {
                child_fail();
            }
        }
        for fd in plan.cgroup_tasks {
            if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                child_fail();
            }
        }
        if plan.unshare_cgroupns && libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            child_fail();
        }
        if let Some(fd) = plan.wait_for_maps {
            wait_for_parent(fd.as_raw_fd());
            // Our ids are still the parent's (host) ids, which the maps
            // need not contain: become the namespace's root (the maps must
            // map it, see plan::userns) so that the exec of the init keeps
            // the full capability set. Raw syscalls: glibc's wrappers
            // signal other threads, and this copy has none. Before the
            // parent-death signal, which a credential change clears.
            if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0
            {
                child_fail();
            }
        }
        for (fd, nstype) in plan.join {
            if libc::setns(fd.as_raw_fd(), *nstype) != 0 {
                child_fail();
            }
        }
        if plan.become_root
            && (libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0)
        {
            child_fail();
        }
        if let Some(offsets) = plan.new_time {
            enter_new_time_ns(offsets);
        }
        if plan.kill_on_parent_death && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            child_fail();
        }
        // Move every source out of 0..=target first, so that placing one
        // never clobbers another, nor the init's own fd (a memfd made
        // while fd 3 was free is fd 3, which the socket is about to take:
        // the exec would then run the socket and fail with EACCES).
        let floor = plan.socket_target + 1;
        let init_fd = match plan.init {
            InitExec::Fd(fd) => lift_fd(fd.as_raw_fd(), floor),
            InitExec::Path(_) => -1,
        };
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
            InitExec::Fd(_) => {
                libc::syscall(
                    libc::SYS_execveat,
                    init_fd,
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

/// `unshare(CLONE_NEWTIME)`, then one `write` of `offsets` to
/// `/proc/self/timens_offsets` (time_namespaces(7): only before a process
/// enters the namespace, which this one does at its next exec). Child only.
///
/// # Safety
/// Only async-signal-safe calls; call only from the cloned child.
unsafe fn enter_new_time_ns(offsets: &[u8]) {
    // SAFETY: unshare(2), open(2), write(2), close(2) are raw syscalls on
    // a static path and a buffer the parent prepared.
    unsafe {
        if libc::unshare(libc::CLONE_NEWTIME) != 0 {
            child_fail();
        }
        if offsets.is_empty() {
            return;
        }
        let fd = libc::open(
            c"/proc/self/timens_offsets".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd < 0 || libc::write(fd, offsets.as_ptr().cast(), offsets.len()) < 0 {
            child_fail();
        }
        libc::close(fd);
    }
}

/// `read(fd, &byte, 1)` until one byte arrives; `_exit` on EOF or error.
/// Child only.
///
/// # Safety
/// Only async-signal-safe calls; call only from the cloned child.
unsafe fn wait_for_parent(fd: RawFd) {
    let mut byte = 0u8;
    loop {
        // SAFETY: read(2) is async-signal-safe; `byte` is a live local.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => return,
            // SAFETY: __errno_location() is this thread's errno slot.
            -1 if unsafe { *libc::__errno_location() } == libc::EINTR => continue,
            // SAFETY: see `child_fail`; EOF exits with status 1 (errno 0 clamps).
            _ => unsafe { child_fail() },
        }
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

/// `clone3(CLONE_NEWUSER | CLONE_PIDFD)` of a process that only holds its
/// new user namespace: it sets `PR_SET_PDEATHSIG(SIGKILL)`, exits at once
/// if this process is already gone, and otherwise sleeps in `pause` until
/// it is killed. The caller writes its maps, opens `/proc/<pid>/ns/user`,
/// then kills and reaps it through the pidfd (see `crate::idmap`).
pub fn spawn_userns_holder() -> io::Result<Spawned> {
    let parent = rustix::process::getpid().as_raw_nonzero().get();
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: (libc::CLONE_NEWUSER | libc::CLONE_PIDFD) as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3(2) with a valid, fully initialised `clone_args` of the
    // size we pass and `pidfd` pointing at a live local. No CLONE_VM and no
    // stack: the child runs on a private copy of this thread's stack, like
    // fork(2), and calls only `hold_userns`, which never returns and makes
    // only async-signal-safe syscalls (prctl, getppid, pause, _exit) on
    // plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => hold_userns(parent),
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

/// The holder child of [`spawn_userns_holder`]. Never returns.
fn hold_userns(parent: i32) -> ! {
    // SAFETY: prctl(2), getppid(2), pause(2) and _exit(2) are
    // async-signal-safe raw syscalls on plain integers (signal-safety(7));
    // nothing here allocates or takes a lock.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
            libc::_exit(1);
        }
        loop {
            libc::pause();
        }
    }
}
