//! Step Dev: device nodes and symlinks inside the rootfs.
//!
//! Owns `mknodat` of the spec's devices (with the spec's exact mode, owner
//! and numbers), the bind of the host's node where `mknod` is not allowed
//! (EPERM, as in a user namespace), and the `/dev` symlinks. Every path is
//! resolved inside the rootfs by `in_root`. It does not mount `/dev` itself
//! (that is one of the spec's mounts) nor `/dev/console` (see `console`).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use corral_protocol::{DeviceNode, Symlink};
use rustix::fs::{
    AtFlags, Dev, FileType, Gid, Mode, Uid, chownat, makedev, mknodat, readlinkat, statat,
    symlinkat, unlinkat,
};
use rustix::io::Errno;
use rustix::process::umask;

use crate::error::{Error, Result};
use crate::in_root;
use crate::rootfs::Rootfs;
use crate::sys;

pub fn create(root: &Rootfs, devices: &[DeviceNode], symlinks: &[Symlink]) -> Result<()> {
    let mut parents = Parents::default();
    // The spec's modes are exact (a 0666 /dev/null must not become 0644).
    let old = umask(Mode::empty());
    let result = devices
        .iter()
        .try_for_each(|dev| create_device(root, &mut parents, dev));
    umask(old);
    result?;
    symlinks
        .iter()
        .try_for_each(|link| create_symlink(root, &mut parents, link))
}

/// The directory the last node was made in, kept while the next node's
/// path has the same parent (`/dev` for every default node and link):
/// one path walk inside the root instead of one per node. The same parent
/// string resolves to the same directory: nodes are only ever made in it,
/// never in one of the components above it.
#[derive(Default)]
struct Parents {
    /// The key (`None`: not to be reused) and the directory.
    last: Option<(Option<Vec<u8>>, OwnedFd)>,
}

impl Parents {
    /// The parent directory of `path` (made if missing, see
    /// `in_root::create_parent`) and the last component.
    fn of<'p>(
        &mut self,
        root: &Rootfs,
        path: &'p [u8],
    ) -> rustix::io::Result<(BorrowedFd<'_>, &'p [u8])> {
        let plain = plain_parent(path);
        let hit = plain.is_some_and(
            |(key, _)| matches!(&self.last, Some((Some(cached), _)) if cached.as_slice() == key),
        );
        let name = match plain {
            Some((_, name)) if hit => name,
            _ => {
                let (fd, name) = in_root::create_parent(root.fd(), path)?;
                // A path that is not plain is resolved every time.
                self.last = Some((plain.map(|(key, _)| key.to_vec()), fd));
                name
            }
        };
        let (_, fd) = self.last.as_ref().expect("hit, or set above");
        Ok((fd.as_fd(), name))
    }
}

/// The file type for an OCI device `type`: `c` (or `u`, unbuffered
/// character), `b`, `p`.
pub fn file_type(kind: char) -> Option<FileType> {
    match kind {
        'c' | 'u' => Some(FileType::CharacterDevice),
        'b' => Some(FileType::BlockDevice),
        'p' => Some(FileType::Fifo),
        _ => None,
    }
}

fn create_device(root: &Rootfs, parents: &mut Parents, dev: &DeviceNode) -> Result<()> {
    let path = dev.path.as_bytes();
    let fail = |op: &'static str| {
        move |errno| Error::Dev {
            op,
            path: path_buf(path),
            errno,
        }
    };
    let file_type = file_type(dev.kind)
        .ok_or(Errno::INVAL)
        .map_err(fail("unknown type of device"))?;
    let rdev = if file_type == FileType::Fifo {
        0
    } else {
        makedev(dev.major, dev.minor)
    };
    let (parent, name) = parents.of(root, path).map_err(fail("create parent of"))?;
    let mode = Mode::from_raw_mode(dev.mode & 0o7777);
    // Made first, looked at only if something is there already (an
    // image's own /dev without a /dev mount): `mknod` reports EEXIST
    // before it checks the privilege to make a device.
    let mut made = mknodat(parent, name, file_type, mode, rdev);
    if made == Err(Errno::EXIST) {
        let st = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(fail("stat"))?;
        if is_same_node(st.st_mode, st.st_rdev, file_type, rdev) {
            return Ok(());
        }
        unlinkat(parent, name, AtFlags::empty()).map_err(fail("remove"))?;
        made = mknodat(parent, name, file_type, mode, rdev);
    }
    match made {
        Ok(()) => {
            let (uid, gid) = (Uid::from_raw(dev.uid), Gid::from_raw(dev.gid));
            chownat(
                parent,
                name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(fail("chown"))
        }
        Err(Errno::PERM) => bind_host_node(root, path).map_err(fail("bind host node onto")),
        Err(errno) => Err(fail("mknod")(errno)),
    }
}

/// The parent and last component of a plain absolute path (no empty, `.`
/// or `..` component, no trailing slash): there the bytes before the last
/// slash name exactly the directory `in_root::create_parent` resolves, so
/// they can key it. `None` for any other path.
fn plain_parent(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = path.strip_prefix(b"/")?;
    let plain = rest
        .split(|&b| b == b'/')
        .all(|c| !c.is_empty() && c != b"." && c != b"..");
    let slash = path.iter().rposition(|&b| b == b'/')?;
    plain.then(|| (&path[..slash], &path[slash + 1..]))
}

/// Whether an existing node is already the one asked for.
pub fn is_same_node(st_mode: u32, st_rdev: Dev, file_type: FileType, rdev: Dev) -> bool {
    FileType::from_raw_mode(st_mode) == file_type
        && (file_type == FileType::Fifo || st_rdev == rdev)
}

/// Without `CAP_MKNOD` in the owning namespace: bind the host's node (same
/// path on the host) onto an empty file, as runc does.
fn bind_host_node(root: &Rootfs, path: &[u8]) -> rustix::io::Result<()> {
    let target = in_root::create_file(root.fd(), path)?;
    let target = sys::proc_fd_path(target.as_fd());
    rustix::mount::mount_bind(OsStr::from_bytes(path), target.as_c_str())
}

fn create_symlink(root: &Rootfs, parents: &mut Parents, link: &Symlink) -> Result<()> {
    let path = link.link.as_bytes();
    let fail = |op: &'static str| {
        move |errno| Error::Dev {
            op,
            path: path_buf(path),
            errno,
        }
    };
    let (parent, name) = parents.of(root, path).map_err(fail("create parent of"))?;
    match symlinkat(link.target.as_bytes(), parent, name) {
        Err(Errno::EXIST) => match readlinkat(parent, name, Vec::new()) {
            Ok(existing) if existing.as_bytes() == link.target.as_bytes() => Ok(()),
            _ => Err(fail("symlink")(Errno::EXIST)),
        },
        other => other.map_err(fail("symlink")),
    }
}

fn path_buf(path: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_key_their_parent() {
        assert_eq!(
            plain_parent(b"/dev/null"),
            Some((&b"/dev"[..], &b"null"[..]))
        );
        assert_eq!(plain_parent(b"/x"), Some((&b""[..], &b"x"[..])));
        assert_eq!(
            plain_parent(b"/dev/fuse/x"),
            Some((&b"/dev/fuse"[..], &b"x"[..]))
        );
        for odd in [
            &b"/dev/fuse/"[..],
            b"/dev//null",
            b"/dev/./null",
            b"/dev/../dev/null",
            b"/dev/.",
            b"dev/null",
            b"/",
        ] {
            assert_eq!(
                plain_parent(odd),
                None,
                "{:?}",
                String::from_utf8_lossy(odd)
            );
        }
    }

    #[test]
    fn oci_device_types_map_to_file_types() {
        assert_eq!(file_type('c'), Some(FileType::CharacterDevice));
        assert_eq!(file_type('u'), Some(FileType::CharacterDevice));
        assert_eq!(file_type('b'), Some(FileType::BlockDevice));
        assert_eq!(file_type('p'), Some(FileType::Fifo));
        assert_eq!(file_type('x'), None);
    }

    #[test]
    fn existing_node_matches_on_type_and_numbers() {
        let null = makedev(1, 3);
        let chr = libc::S_IFCHR | 0o666;
        assert!(is_same_node(chr, null, FileType::CharacterDevice, null));
        assert!(!is_same_node(
            chr,
            makedev(1, 5),
            FileType::CharacterDevice,
            null
        ));
        assert!(!is_same_node(
            libc::S_IFREG | 0o644,
            0,
            FileType::CharacterDevice,
            null
        ));
        assert!(is_same_node(libc::S_IFIFO | 0o600, 0, FileType::Fifo, 0));
    }
}
