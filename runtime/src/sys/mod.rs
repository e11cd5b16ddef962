//! The runtime's only unsafe code: `clone3` and the child before it execs
//! `corral-init` (`clone`), io_uring submissions (`uring`), tokio fd
//! registration, and the few calls rustix does not wrap. Everything else
//! happens in safe code or in `corral-init`.
//!
//! Nothing here returns a `RawFd` to the rest of the crate.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

pub use clone::{ChildPlan, InitExec, Spawned, spawn_init, spawn_userns_holder};

pub mod bpf;
mod clone;
pub mod netlink;
pub mod uring;

/// `ioctl(fd, NS_GET_NSTYPE)`: the `CLONE_NEW*` type of a namespace file
/// (ioctl_nsfs(2)); `EINVAL`/`ENOTTY` for other files.
pub fn ns_type(fd: BorrowedFd<'_>) -> io::Result<i32> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: ioctl(2) NS_GET_NSTYPE takes no argument and returns the type;
    // `fd` is live for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `ioctl(pidfd, PIDFD_GET_MNT_NAMESPACE)`: an fd of the process's mount
/// namespace (Linux 6.11+; `ENOTTY` before), close-on-exec.
pub fn pidfd_mount_ns(pidfd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // _IO(PIDFS_IOCTL_MAGIC = 0xFF, 3), include/uapi/linux/pidfd.h.
    const PIDFD_GET_MNT_NAMESPACE: libc::c_ulong = 0xff03;
    // SAFETY: the ioctl returns a new fd or -1; its argument must be 0
    // (EINVAL otherwise) and is not a pointer. `pidfd` is live for the call.
    let ret = unsafe {
        libc::ioctl(
            pidfd.as_raw_fd(),
            PIDFD_GET_MNT_NAMESPACE,
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return is a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ret) })
}

/// A `cpu_set_t` holding `cpus` (those beyond its size are left out).
pub fn cpu_set(cpus: impl IntoIterator<Item = usize>) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for cpu in cpus.into_iter().filter(|&c| c < max) {
        // SAFETY: CPU_SET writes bit `cpu` of `set`, which is in bounds:
        // `cpu` is below the set's size in bits (filtered above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
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

/// `struct mount_attr` (`MOUNT_ATTR_SIZE_VER0`, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_IDMAP` (`<linux/mount.h>`).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `mount_setattr(tree, "", AT_EMPTY_PATH [| AT_RECURSIVE], {attr_set:
/// MOUNT_ATTR_IDMAP, userns_fd})`: idmaps the detached mount `tree` (and,
/// `recursive`, every mount below it) with the mappings of the user
/// namespace `userns` (mount_setattr(2)). EINVAL when a filesystem of the
/// tree does not support idmapped mounts or the tree is attached.
pub fn mount_setattr_idmap(
    tree: BorrowedFd<'_>,
    recursive: bool,
    userns: BorrowedFd<'_>,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(tree, recursive, &attr)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH, {attr_set: set})` on the one
/// mount at `fd` (not recursive; propagation and idmapping untouched).
pub fn mount_set_attrs(fd: BorrowedFd<'_>, set: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(fd, false, &attr)
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, {attr_set: set,
/// propagation})`: adds the `MOUNT_ATTR_*` flags `set` (maybe none) to
/// `tree` and every mount below it, and sets their propagation type
/// (`MS_SLAVE`, `MS_PRIVATE`, ...; 0: unchanged) (mount_setattr(2)).
pub fn mount_set_attrs_recursive(
    tree: BorrowedFd<'_>,
    set: u64,
    propagation: u64,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    mount_setattr(tree, true, &attr)
}

fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr(2) reads `size` bytes at the attr pointer, which
    // points at `attr`, borrowed for the call and laid out as the kernel's
    // VER0 `struct mount_attr` (repr(C), four u64); the path is a static
    // NUL-terminated empty string, valid with AT_EMPTY_PATH; `fd` (and any
    // `userns_fd` in `attr`, borrowed by the caller) is open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
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
