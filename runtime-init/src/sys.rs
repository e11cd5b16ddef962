//! The init's only unsafe code: thin safe wrappers over the few calls
//! rustix 1.1 lacks or that need raw fd numbers.
//!
//! Owns: adopting the init socket from its fd number, the `/proc/self/fd/N`
//! names of fds, the `SIOCSIFFLAGS` ioctl, `close_range(CLOSE_RANGE_CLOEXEC)`,
//! resetting signal state and `execve`. Everything else uses rustix. A raw
//! fd never leaves this module as a handle: callers get `OwnedFd`s, paths
//! and plain numbers for planning.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::io::{self, Errno};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// Adopts the init socket whose number the runtime passed as `argv[1]`.
///
/// Returns `None` when `arg` is not a number above the workload's stdio
/// (0-2) or names no open socket.
pub fn take_init_socket(arg: &OsStr) -> Option<OwnedFd> {
    let raw: i32 = std::str::from_utf8(arg.as_bytes()).ok()?.parse().ok()?;
    if raw < 3 {
        return None;
    }
    // SAFETY: `libc::stat` is plain data (integers only), for which all
    // zero bytes are a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat(2) writes only into `st`, a valid, writable local of
    // the right type; any fd number is allowed (EBADF if not open).
    if unsafe { libc::fstat(raw, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: by the runtime's contract (docs/protocol.md) fd `raw` is the
    // init socket, dup2'd there for this process alone; nothing else in this
    // process owns it (the Rust runtime opens no fds before `main`), and we
    // checked it is an open socket. Ownership passes to the `OwnedFd`.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The number of `fd`, for planning which ranges to mark close-on-exec.
pub fn fd_number(fd: BorrowedFd<'_>) -> u32 {
    let raw = fd.as_raw_fd();
    debug_assert!(raw >= 0, "a BorrowedFd is never negative");
    raw.unsigned_abs()
}

/// `/proc/self/fd/<N>`: the magic link through which `mount(2)` and
/// `open(2)` reach the file `fd` refers to, without any path lookup.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("digits contain no NUL")
}

/// What `mount(2)` is given to reach the file `fd` refers to. For a
/// directory: `.` after `fchdir(fd)`, which the kernel resolves with no
/// path walk at all, where `/proc/self/fd/<N>` walks /proc entries that are
/// never cached for a new process (a quarter of each mount's time, in
/// `perf` samples of a container's init). Otherwise, or when `fd` cannot
/// be entered, [`proc_fd_path`]. Moves the working directory: the caller
/// returns to its own afterwards.
pub fn mount_target(fd: BorrowedFd<'_>) -> CString {
    match rustix::process::fchdir(fd) {
        Ok(()) => c".".to_owned(),
        Err(_) => proc_fd_path(fd),
    }
}

/// Brings the loopback interface up: `SIOCGIFFLAGS`, then `SIOCSIFFLAGS`
/// with `IFF_UP` added (netdevice(7)).
pub fn set_loopback_up() -> io::Result<()> {
    let sock = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, src) in name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    let mut req = libc::ifreq {
        ifr_name: name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 },
    };
    // SAFETY: netdevice(7): SIOCGIFFLAGS reads `ifr_name` (NUL-terminated:
    // "lo" plus zeros) and writes `ifr_flags` within the `ifreq` we pass,
    // which lives for the whole call; `sock` is an open socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(last_errno());
    }
    // SAFETY: the successful SIOCGIFFLAGS above initialised `ifru_flags`,
    // the union member we read.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads the `ifreq`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// `close_range(first, last, CLOSE_RANGE_CLOEXEC)`—marks every fd in the
/// range close-on-exec (close_range(2), Linux 5.11).
///
/// Marking rather than closing keeps this safe: no fd anybody owns becomes
/// dangling, and each is closed by the `execve` of the workload.
pub fn cloexec_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range(2) takes plain integers and touches no memory;
    // with CLOSE_RANGE_CLOEXEC it closes nothing, it only sets FD_CLOEXEC.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            last,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `fcntl(n, F_SETFD, FD_CLOEXEC)` on each fd number listed in
/// `/proc/self/fd` that `keep` does not exclude: the fallback for kernels
/// without `CLOSE_RANGE_CLOEXEC`.
pub fn cloexec_listed(first: u32, keep: &[u32]) -> io::Result<()> {
    let dir = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    for entry in dir.flatten() {
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if n < first || keep.contains(&n) {
            continue;
        }
        let Ok(raw) = i32::try_from(n) else { continue };
        // SAFETY: fcntl(2) F_SETFD takes plain integers and touches no
        // memory; it closes nothing (FD_CLOEXEC is the only fd flag). A
        // number that is no longer open (read_dir's own fd) gives EBADF,
        // which we ignore.
        unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// An `execve` call built ahead of time, so that nothing allocates after
/// the start signal.
pub struct ExecArgs {
    path: CString,
    // The pointer arrays point into the heap buffers of these CStrings,
    // which do not move when the `Vec` or `ExecArgs` is moved.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    pub fn new(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        let null_terminated = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        ExecArgs {
            path,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
        }
    }

    pub fn path(&self) -> &CStr {
        &self.path
    }
}

/// Puts back the default action of every signal this process inherited
/// as ignored, except `SIGPIPE`, which stays ignored until [`execve`] (the
/// init's own writes to a closed socket must fail with `EPIPE`, not kill
/// it). Called first thing in `main`.
///
/// An ignored signal stays ignored across `execve` (signal(7)), and
/// whoever started the runtime may have ignored some (`nohup`, Python's
/// `SIGXFSZ`), so the workload would inherit them; handlers, the other
/// non-default disposition, are reset by `execve` itself, and the init
/// installs none of its own. The ignored set is read from `SigIgn` in
/// `/proc/self/status`, so only those signals cost a call; without a
/// readable `/proc` every signal is reset. Doing it here rather than just
/// before `execve` keeps it off a warm pool's start path.
pub fn reset_inherited_ignored_signals() {
    let mut buf = [0u8; 4096];
    let ignored = crate::procfs::read(c"/proc/self/status", &mut buf)
        .and_then(|status| sig_ignored(std::str::from_utf8(status).ok()?))
        .unwrap_or(u64::MAX);
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP || signal == libc::SIGPIPE {
            continue;
        }
        if ignored & (1u64 << (signal - 1)) == 0 {
            continue;
        }
        set_action(signal, libc::SIG_DFL);
    }
}

/// The entry point glibc's start-up calls, as the crate is `#![no_main]`
/// (see `main.rs`). `SIGPIPE` is ignored first, as std's start-up would
/// have done: the init's writes to a closed pipe or socket must fail with
/// `EPIPE`, not kill it.
#[cfg(not(test))]
// SAFETY: the one `main` symbol of this binary (no std `main` is emitted
// under `no_main`, and tests, which have their own, do not build this),
// with the C signature glibc calls it with.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    set_action(libc::SIGPIPE, libc::SIG_IGN);
    crate::start()
}

/// `rt_sigaction(signal, handler)` for `SIG_DFL` or `SIG_IGN`, as a raw
/// syscall: the libc's wrappers refuse the real-time signals it reserves
/// for itself (32 and 33 with glibc), which a caller may still have left
/// ignored.
fn set_action(signal: i32, handler: libc::sighandler_t) {
    debug_assert!(handler == libc::SIG_DFL || handler == libc::SIG_IGN);
    /// The kernel's `struct sigaction` on x86_64 and aarch64: handler,
    /// flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let action = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction(2) reads one kernel `struct sigaction` at the
    // pointer, which points at `action`, a live local of that layout, with
    // the kernel's sigset size (8 bytes); the old-action pointer is null.
    // SIG_DFL and SIG_IGN install no handler, so no code of ours can run
    // asynchronously; a number that cannot be changed fails with EINVAL,
    // which changes nothing.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

/// The `SigIgn:` mask of a `/proc/<pid>/status` text (bit n-1: signal n).
fn sig_ignored(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// `execve(path, argv, envp)`—returns only on failure, with its errno.
///
/// First restores the signal state a workload expects: `SIGPIPE` back to
/// its default action (the Rust runtime ignores it; every other inherited
/// ignored signal was reset at start, see
/// [`reset_inherited_ignored_signals`]) and no signal blocked.
pub fn execve(args: &ExecArgs) -> Errno {
    set_action(libc::SIGPIPE, libc::SIG_DFL);
    // SAFETY: `sigset_t` is plain data, valid when zeroed; sigemptyset(3)
    // and sigprocmask(2) write/read only `set`, a live local, and a null
    // old-set pointer is allowed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    debug_assert!(args.argv_ptrs.last().is_some_and(|p| p.is_null()));
    debug_assert!(args.envp_ptrs.last().is_some_and(|p| p.is_null()));
    // SAFETY: execve(2) needs a NUL-terminated path and NULL-terminated
    // arrays of NUL-terminated strings. `path` is a CString; both arrays end
    // with a null pointer (ExecArgs::new) and every other element points
    // into a CString owned by `args`, which outlives the call.
    unsafe {
        libc::execve(
            args.path.as_ptr(),
            args.argv_ptrs.as_ptr(),
            args.envp_ptrs.as_ptr(),
        )
    };
    last_errno()
}

fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` (linux/seccomp.h).
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)` (seccomp(2)): loads one
/// classic BPF program, given as packed `struct sock_filter`s
/// (`code | jt << 16 | jf << 24 | k << 32`). With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel returns the
/// user-notification fd (close-on-exec), which is returned here.
pub fn load_seccomp_filter(flags: u32, packed: &[u64]) -> io::Result<Option<OwnedFd>> {
    let mut prog: Vec<libc::sock_filter> = packed
        .iter()
        .map(|&i| libc::sock_filter {
            code: i as u16,
            jt: (i >> 16) as u8,
            jf: (i >> 24) as u8,
            k: (i >> 32) as u32,
        })
        .collect();
    let len = u16::try_from(prog.len()).map_err(|_| Errno::INVAL)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: seccomp(2) reads `len` instructions from `filter`, which
    // points at `prog`, alive and unmoved for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL));
    }
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let raw = i32::try_from(ret).map_err(|_| Errno::INVAL)?;
    debug_assert!(raw >= 0);
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful
    // seccomp(2) returns a new fd that nothing else owns (seccomp(2),
    // "RETURN VALUE"); ownership passes to the `OwnedFd`.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) }))
}

/// `clone3(CLONE_PARENT | CLONE_PIDFD | namespace_flags)`, fork-like (no
/// `CLONE_VM`, no stack), into the v2 cgroup `cgroup` when given
/// (`CLONE_INTO_CGROUP`): the new process's parent is this process's
/// parent (the runtime), so the runtime can reap it through the pidfd.
/// Returns `Some((pidfd, pid))` here and `None` in the new process. Used
/// by exec mode (no flags) and by the resident init (a container's
/// namespaces and cgroup).
///
/// Children are made in the pid and time namespaces this process joined
/// with `setns` (pid_namespaces(7)); the exit signal is this process's own
/// (`SIGCHLD`), which the kernel copies for `CLONE_PARENT` (clone(2)).
pub fn clone_parent(
    namespace_flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
) -> io::Result<Option<(OwnedFd, i32)>> {
    /// `struct clone_args` (version 2, 88 bytes, with `cgroup`) from
    /// `<linux/sched.h>`.
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
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: namespace_flags | (libc::CLONE_PARENT | libc::CLONE_PIDFD) as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    // SAFETY: clone3(2) with a fully initialised `clone_args` of the size we
    // pass, and `pidfd` pointing at a live local. No CLONE_VM and no stack:
    // the child runs on a private copy of this process's memory, like
    // fork(2). The init is single-threaded (no tokio, no thread spawned), so
    // no lock can be held by a thread that does not exist in the child, and
    // the child may go on running ordinary code. A raw clone3 skips what
    // glibc's fork(3) adds (atfork handlers, resetting the cached tid and
    // robust list): the init registers no atfork handler, and nothing it
    // calls reads the cached tid (Rust's locks are plain futexes).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(last_errno()),
        0 => Ok(None),
        pid => {
            debug_assert!(pidfd >= 0, "CLONE_PIDFD returns a pidfd");
            // SAFETY: the kernel stored a new fd in `pidfd` (CLONE_PIDFD,
            // clone(2)), close-on-exec; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            let pid = i32::try_from(pid).expect("clone3 returns a pid_t");
            Ok(Some((fd, pid)))
        }
    }
}

/// `pidfd_send_signal(pidfd, 0, NULL, 0)`: `Ok` while the process lives
/// (ESRCH once it has exited, even if its pid was reused).
pub fn pidfd_alive(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: pidfd_send_signal(2) with signal 0 sends nothing; a NULL
    // siginfo and no flags; the fd is borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 { Ok(()) } else { Err(last_errno()) }
}

/// `personality(persona)`: sets the process's execution domain
/// (personality(2)); the kernel keeps it across `execve`.
pub fn set_personality(persona: u32) -> io::Result<()> {
    debug_assert_ne!(persona, 0xffff_ffff, "0xffffffff queries, it does not set");
    // SAFETY: personality(2) takes a plain integer and touches no memory of
    // ours; 0xffffffff would only query, and callers pass a known persona.
    let ret = unsafe { libc::personality(libc::c_ulong::from(persona)) };
    if ret == -1 { Err(last_errno()) } else { Ok(()) }
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio)`: the I/O scheduling class
/// and level of the calling thread (ioprio_set(2)); kept across `execve`.
pub fn set_io_priority(ioprio: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_set(2) takes three integers by value and touches no
    // memory of ours; `who` 0 with IOPRIO_WHO_PROCESS is the calling thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_long,
            libc::c_long::from(ioprio),
        )
    };
    if ret == 0 { Ok(()) } else { Err(last_errno()) }
}

/// `struct sched_attr` as of `SCHED_ATTR_SIZE_VER0` (48 bytes): the
/// utilization clamps of VER1 are never set (the plan refuses them).
#[repr(C)]
struct SchedAttrVer0 {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// `sched_setattr(0, attr, 0)`: the calling thread's scheduling policy,
/// nice value, priority and deadline parameters (sched_setattr(2)).
pub fn set_scheduler(attr: &corral_protocol::SchedAttr) -> io::Result<()> {
    let raw = SchedAttrVer0 {
        size: std::mem::size_of::<SchedAttrVer0>() as u32,
        sched_policy: attr.policy,
        sched_flags: attr.flags,
        sched_nice: attr.nice,
        sched_priority: attr.priority,
        sched_runtime: attr.runtime,
        sched_deadline: attr.deadline,
        sched_period: attr.period,
    };
    debug_assert_eq!(raw.size, 48, "SCHED_ATTR_SIZE_VER0");
    // SAFETY: sched_setattr(2) reads `size` bytes from the pointer, which
    // points at `raw`, a live local laid out as the kernel's VER0
    // `struct sched_attr` (repr(C), no padding: 2 u32, u64, i32, u32, 3 u64)
    // whose `size` field says 48; pid 0 is the calling thread; flags 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::c_long,
            &raw as *const SchedAttrVer0,
            0 as libc::c_long,
        )
    };
    if ret == 0 { Ok(()) } else { Err(last_errno()) }
}

/// `struct mount_attr` (`MOUNT_ATTR_SIZE_VER0`, 32 bytes).
#[repr(C)]
struct MountAttrVer0 {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr)`: sets and
/// clears `MOUNT_ATTR_*` bits on the mount at `fd` (and, `recursive`, every
/// mount below it) (mount_setattr(2)); propagation and idmapping are left
/// alone.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttrVer0 {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr(2) reads `size` bytes at the attr pointer, which
    // points at `attr`, a live local laid out as the kernel's VER0 `struct
    // mount_attr` (repr(C), four u64); the path is a NUL-terminated empty
    // string (a static literal), valid with AT_EMPTY_PATH; the fd is
    // borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttrVer0,
            std::mem::size_of::<MountAttrVer0>(),
        )
    };
    if ret == 0 { Ok(()) } else { Err(last_errno()) }
}

/// `set_mempolicy(mode | flags, nodemask, maxnode)` (set_mempolicy(2)):
/// the calling thread's NUMA memory policy, kept across `execve`. `nodes`
/// are node numbers; an empty list passes a null mask.
pub fn set_memory_policy(mode: u32, flags: u32, nodes: &[u32]) -> io::Result<()> {
    const BITS: usize = u64::BITS as usize;
    let words = nodes.iter().max().map_or(0, |&n| n as usize / BITS + 1);
    let mut mask = vec![0u64; words];
    for &n in nodes {
        mask[n as usize / BITS] |= 1 << (n as usize % BITS);
    }
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // The kernel reads `maxnode - 1` bits (a historical off-by-one that
    // libnuma also allows for), so one more than the mask holds.
    let maxnode = if mask.is_empty() { 0 } else { words * BITS + 1 };
    debug_assert_eq!(std::mem::size_of::<libc::c_ulong>(), 8);
    // SAFETY: set_mempolicy(2) reads at most BITS_TO_LONGS(maxnode - 1)
    // unsigned longs from `ptr`, which is `words` u64s (unsigned long is 64
    // bits on every target this crate builds for: debug-asserted above) of
    // the live `mask`, or null with maxnode 0; mode and flags are integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            libc::c_long::from((mode | flags) as i32),
            ptr,
            maxnode as libc::c_ulong,
        )
    };
    if ret == 0 { Ok(()) } else { Err(last_errno()) }
}

/// `dup2(fd, target)`, leaving the new fd without `FD_CLOEXEC` (fd 3 is
/// marked again by the caller).
pub fn dup_onto(fd: BorrowedFd<'_>, target: i32) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return Ok(());
    }
    // SAFETY: dup2(2) on an fd borrowed for the call; `target` is a plain
    // number, replaced atomically if open (the caller's own stdio or
    // socket slot, which it owns through its statics and nothing else).
    let ret = unsafe { libc::dup2(fd.as_raw_fd(), target) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `close_range(first, ~0, 0)`: closes every fd from `first` on.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range(2) closes fds this process may still hold as
    // `OwnedFd`s; the caller (a freshly cloned child) has dropped every
    // handle to those fds and holds none in statics at or above `first`.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `setresgid(0, 0, 0)` then `setresuid(0, 0, 0)` for this (only)
/// thread: root of a user namespace whose maps map 0.
pub fn become_root() -> io::Result<()> {
    use rustix::thread::{Gid, Uid, set_thread_res_gid, set_thread_res_uid};
    set_thread_res_gid(Gid::ROOT, Gid::ROOT, Gid::ROOT)?;
    set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT)
}

/// `unshare(CLONE_NEWCGROUP)`.
pub fn unshare_cgroupns() -> io::Result<()> {
    // SAFETY: unshare(2) of the cgroup namespace only: it touches no fd
    // table or memory of this process, and the caller has one thread.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
}

#[cfg(test)]
mod signal_tests {
    #[test]
    fn sig_ignored_reads_the_status_mask() {
        let status = "Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\nSigCgt:\t0\n";
        assert_eq!(super::sig_ignored(status), Some(0x1001));
        assert_eq!(super::sig_ignored("Name:\tx\n"), None);
    }
}
