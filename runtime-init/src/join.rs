//! Step Join (exec mode): enter a running container's namespaces and root.
//!
//! Owns the `setns(pidfd, flags)` that joins every namespace the runtime
//! named at once (Linux 5.8: the kernel switches them together, in the
//! right order, or not at all), and the `chroot` into the target's root.
//! `setns` into a mount namespace sets the root to that namespace's root,
//! which is the container's only when it used `pivot_root`; the target's
//! `/proc/<pid>/root`, opened before the switch, is right in both cases
//! (and for `--no-pivot` containers, which `chroot`ed).
//!
//! The pid (and time) namespace apply to children only (pid_namespaces(7));
//! `spawn` makes that child. It does not touch cgroups: the runtime placed
//! this process in the target's cgroups before sending the exec request.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use corral_protocol::ExecSpec;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::{ThreadNameSpaceType, move_into_thread_name_spaces};

use crate::error::{Error, Result};

pub fn enter(spec: &ExecSpec, target: &OwnedFd) -> Result<()> {
    let root_path = PathBuf::from(format!("/proc/{}/root", spec.target_pid));
    let fail =
        |op: &'static str, path: Option<PathBuf>| move |errno| Error::Join { op, path, errno };
    let root = rustix::fs::open(
        &root_path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open", Some(root_path.clone())))?;
    // The pid named a live process when the runtime sent it with its pidfd;
    // if the pidfd's process is still alive now, after the open, no other
    // process can have taken the pid, so `root` is the target's.
    crate::sys::pidfd_alive(target.as_fd()).map_err(fail("check target alive", None))?;
    let flags = ThreadNameSpaceType::from_bits(namespace_bits(spec.namespaces)?)
        .ok_or(Errno::INVAL)
        .map_err(fail("setns with unknown namespace flags", None))?;
    move_into_thread_name_spaces(target.as_fd(), flags).map_err(fail("setns", None))?;
    rustix::process::fchdir(&root).map_err(fail("fchdir", Some(root_path.clone())))?;
    rustix::process::chroot(".").map_err(fail("chroot", Some(root_path)))?;
    rustix::process::chdir("/").map_err(fail("chdir", Some("/".into())))
}

/// The flags as the `u32` `setns` takes; a bit above 32 is no namespace.
fn namespace_bits(flags: u64) -> Result<u32> {
    u32::try_from(flags).map_err(|_| Error::Join {
        op: "setns with unknown namespace flags",
        path: None,
        errno: Errno::INVAL,
    })
}
