//! Step PivotRoot: make the rootfs the process's root, and drop the host's.
//!
//! Owns `pivot_root` (with the `MS_MOVE` + `chroot` fallback for roots that
//! cannot be pivoted, or when the spec asks for no pivot) and reapplying a
//! shared root propagation afterwards (see `rootfs::make_parent_private`).
//! After this step every path is a container path; the rootfs fd is closed
//! here.

use corral_protocol::{InitSpec, Step};
use rustix::io::Errno;
use rustix::mount::{MountPropagationFlags, UnmountFlags, mount_change, mount_move, unmount};
use rustix::process::{chdir, chroot, fchdir, pivot_root};

use crate::channel;
use crate::error::{Error, Result};
use crate::mounts::{MS_SHARED, propagation_flags};
use crate::rootfs::{Rootfs, root_propagation};

pub fn enter(root: Rootfs, spec: &InitSpec) -> Result<()> {
    let path = root.path.clone();
    let fail = |op: &'static str| {
        let path = path.clone();
        move |errno| Error::PivotRoot { op, path, errno }
    };
    fchdir(root.fd()).map_err(fail("chdir into"))?;
    drop(root);
    if spec.no_pivot {
        move_root().map_err(fail("move and chroot into"))?;
    } else {
        match pivot() {
            Ok(()) => {}
            // An initramfs root (rootfs/ramfs) cannot be pivoted away from.
            Err(Errno::INVAL) => {
                channel::warn(
                    Step::PivotRoot,
                    "pivot_root refused (EINVAL); using MS_MOVE and chroot",
                    None,
                );
                move_root().map_err(fail("move and chroot into"))?;
            }
            Err(errno) => return Err(fail("pivot_root into")(errno)),
        }
    }
    let propagation = root_propagation(spec.root_propagation);
    if propagation & MS_SHARED != 0 {
        propagation_flags(propagation)
            .and_then(|flags| mount_change("/", flags))
            .map_err(fail("set root propagation after pivot into"))?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` with no `put_old` directory (pivot_root(2),
/// NOTES): the old root ends up mounted on top of the new one, at the same
/// place, and is the mount `.` now names, since it is the top of the
/// stack. The call moves our root to the new root (our cwd already is
/// it), so unmounting `.` detaches exactly the old root, and nothing of
/// the host stays reachable. This needs no writable directory in
/// the rootfs, unlike a `put_old` under it.
fn pivot() -> rustix::io::Result<()> {
    pivot_root(".", ".")?;
    // The old root may be shared with the host: make it (recursively) a
    // slave first, so the unmount does not propagate there.
    mount_change(
        ".",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )?;
    unmount(".", UnmountFlags::DETACH)?;
    chdir("/")
}

/// The fallback: move the rootfs mount over `/` and chroot into it. Weaker
/// than pivot_root (the host root is still mounted underneath), which is
/// why it is only used when pivot_root is refused or `no_pivot` asks.
fn move_root() -> rustix::io::Result<()> {
    mount_move(".", "/")?;
    chroot(".")?;
    chdir("/")
}
