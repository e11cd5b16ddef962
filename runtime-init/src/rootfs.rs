//! Step Rootfs: root propagation, the rootfs bind, and the rootfs dir fd.
//!
//! Owns making `/` non-shared (so nothing the init mounts leaks to the
//! host), binding the rootfs onto itself (`pivot_root` needs a mount
//! point), and the `O_PATH` fd through which every later step of the
//! pre-pivot phase resolves container paths (see `in_root`). It does not
//! pivot (see `pivot_root`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use corral_protocol::InitSpec;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountPropagationFlags, mount_bind_recursive, mount_change};

use crate::error::{Error, Result, errno_of};
use crate::mounts::{MS_REC, MS_SHARED, MS_SLAVE, propagation_flags};

/// The rootfs, bound onto itself, and an fd of it.
pub struct Rootfs {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Rootfs {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

pub fn prepare(spec: &InitSpec) -> Result<Rootfs> {
    let propagation = root_propagation(spec.root_propagation);
    let flags = propagation_flags(propagation).map_err(|errno| Error::Rootfs {
        op: "set propagation of",
        path: "/".into(),
        errno,
    })?;
    mount_change("/", flags).map_err(|errno| Error::Rootfs {
        op: "set propagation of",
        path: "/".into(),
        errno,
    })?;
    let path = std::fs::canonicalize(spec.rootfs.as_path()).map_err(|e| Error::Rootfs {
        op: "resolve",
        path: spec.rootfs.as_path().to_owned(),
        errno: errno_of(&e),
    })?;
    if propagation & MS_SHARED != 0 {
        make_parent_private(&path)?;
    }
    mount_bind_recursive(&path, &path).map_err(|errno| Error::Rootfs {
        op: "bind mount",
        path: path.clone(),
        errno,
    })?;
    let fd = rustix::fs::open(
        &path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| Error::Rootfs {
        op: "open",
        path: path.clone(),
        errno,
    })?;
    Ok(Rootfs { fd, path })
}

/// The spec's root propagation, `MS_SLAVE | MS_REC` when unset: host mounts
/// still reach the container, nothing goes back.
pub fn root_propagation(raw: u64) -> u64 {
    if raw == 0 { MS_SLAVE | MS_REC } else { raw }
}

/// With a shared root, the rootfs bind would join the host's peer group and
/// `pivot_root` would fail with EINVAL (pivot_root(2): the parent mount of
/// `new_root` must not be shared). As runc does, make the mount the rootfs
/// lives on private; `pivot_root` reapplies the root propagation after.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mountinfo = std::fs::read("/proc/self/mountinfo").map_err(|e| Error::Rootfs {
        op: "read",
        path: "/proc/self/mountinfo".into(),
        errno: errno_of(&e),
    })?;
    let Some((mount_point, shared)) = parent_mount(&mountinfo, rootfs.as_os_str().as_bytes())
    else {
        return Ok(());
    };
    if !shared {
        return Ok(());
    }
    let mount_point = PathBuf::from(std::ffi::OsStr::from_bytes(&mount_point));
    mount_change(&mount_point, MountPropagationFlags::PRIVATE).map_err(|errno| Error::Rootfs {
        op: "make private",
        path: mount_point,
        errno,
    })
}

/// The mount point `path` lives on (the last, so topmost, of the longest
/// matching mount points in mountinfo) and whether it is shared.
pub fn parent_mount(mountinfo: &[u8], path: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut best: Option<(Vec<u8>, bool)> = None;
    for line in mountinfo.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(raw_point) = fields.get(4) else {
            continue;
        };
        let point = unescape(raw_point);
        if !is_under(path, &point) {
            continue;
        }
        if best.as_ref().is_some_and(|(b, _)| b.len() > point.len()) {
            continue;
        }
        let mut optional = fields.iter().skip(6).take_while(|f| **f != b"-");
        let shared = optional.any(|f| f.starts_with(b"shared:"));
        best = Some((point, shared));
    }
    best
}

/// Whether `path` is `mount_point` or below it, component-wise.
fn is_under(path: &[u8], mount_point: &[u8]) -> bool {
    mount_point == b"/"
        || path == mount_point
        || (path.starts_with(mount_point) && path.get(mount_point.len()) == Some(&b'/'))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` (proc(5)).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &[u8] = b"\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
40 22 8:2 / /var/lib rw,relatime - ext4 /dev/sda2 rw
41 40 8:2 /x /var/lib/my\\040dir rw master:3 - ext4 /dev/sda2 rw
";

    #[test]
    fn parent_mount_is_longest_prefix() {
        let got = parent_mount(MOUNTINFO, b"/var/lib/containers/c1/rootfs");
        assert_eq!(got, Some((b"/var/lib".to_vec(), false)));
        assert_eq!(
            parent_mount(MOUNTINFO, b"/srv/rootfs"),
            Some((b"/".to_vec(), true))
        );
    }

    #[test]
    fn parent_mount_matches_components_not_bytes() {
        assert_eq!(
            parent_mount(MOUNTINFO, b"/devices/rootfs"),
            Some((b"/".to_vec(), true))
        );
    }

    #[test]
    fn parent_mount_unescapes_octal() {
        let got = parent_mount(MOUNTINFO, b"/var/lib/my dir/rootfs");
        assert_eq!(got, Some((b"/var/lib/my dir".to_vec(), false)));
    }

    #[test]
    fn default_root_propagation_is_recursive_slave() {
        assert_eq!(root_propagation(0), MS_SLAVE | MS_REC);
        assert_eq!(root_propagation(MS_SHARED | MS_REC), MS_SHARED | MS_REC);
    }
}
