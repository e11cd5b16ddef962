//! Step ReadonlyPaths: remount the spec's read-only paths (after
//! pivot_root), and the root itself when `readonly_root`.
//!
//! A path is bound onto itself, so it is a mount of its own, then that
//! mount is remounted read-only, keeping the flags it already has (see
//! `mounts::remount_bind`). A missing path is skipped.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use corral_protocol::RawPath;
use rustix::io::Errno;
use rustix::mount::mount_bind_recursive;

use crate::error::{Error, Result};
use crate::mounts::{MS_RDONLY, existing_flags, remount_bind, with_locked};

pub fn apply(paths: &[RawPath], readonly_root: bool) -> Result<()> {
    paths
        .iter()
        .try_for_each(|path| make_readonly(path.as_path()))?;
    if readonly_root {
        remount_readonly(Path::new("/"))?;
    }
    Ok(())
}

fn make_readonly(path: &Path) -> Result<()> {
    let fail = |op: &'static str| {
        move |errno| Error::ReadonlyPath {
            op,
            path: path.to_owned(),
            errno,
        }
    };
    match rustix::fs::stat(path) {
        Err(Errno::NOENT) => return Ok(()),
        other => drop(other.map_err(fail("stat"))?),
    }
    mount_bind_recursive(path, path).map_err(fail("bind onto itself"))?;
    remount_readonly(path)
}

/// `MS_REMOUNT | MS_BIND | MS_RDONLY` plus the mount's nosuid, nodev,
/// noexec and atime flags: in a mount namespace that does not own them
/// they are locked, and a remount that would clear them fails with EPERM.
fn remount_readonly(path: &Path) -> Result<()> {
    let fail = |op: &'static str| {
        move |errno| Error::ReadonlyPath {
            op,
            path: path.to_owned(),
            errno,
        }
    };
    let cpath =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| fail("remount")(Errno::INVAL))?;
    let flags = with_locked(MS_RDONLY, existing_flags(&cpath).map_err(fail("statvfs"))?);
    remount_bind(&cpath, flags).map_err(fail("remount read-only"))
}
