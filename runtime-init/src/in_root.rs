//! Path resolution inside the rootfs, before `pivot_root`.
//!
//! Every container path (mount destinations, device nodes, symlinks,
//! `/dev/console`, the ptmx) is looked up from the rootfs dir fd with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` and absolute
//! symlinks are clamped at the rootfs, so a symlink planted by an image
//! (`/proc -> /`, `dev -> ../../..`) can never lead outside it
//! (CVE-2021-30465 class). Missing directories are created one component
//! at a time with `mkdirat` relative to an fd resolved the same way.
//! Callers act on the returned fds (or their `/proc/self/fd/N` names),
//! never on the path again. This module does not mount anything.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{
    FileType, Mode, OFlags, ResolveFlags, mkdirat, mknodat, openat, openat2, readlinkat,
};
use rustix::io::{self, Errno};

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// The components of a container path, without empty ones and `.`.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Splits `path` into its parent's components and its last component
/// (`None` for the root itself).
pub fn split_last(path: &[u8]) -> (Vec<&[u8]>, Option<&[u8]>) {
    let mut parts: Vec<&[u8]> = components(path).collect();
    let last = parts.pop();
    (parts, last)
}

/// Opens `path` inside the root with `flags` (plus `O_CLOEXEC`).
pub fn open_with(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let relative: Vec<u8> = join(components(path));
    let relative: &[u8] = if relative.is_empty() { b"." } else { &relative };
    // openat2(2): with RESOLVE_IN_ROOT, a `..` met while any rename or mount
    // happens anywhere on the system gives EAGAIN ("could not ensure that
    // `..` did not escape"); callers are told to retry. Concurrent
    // containers mount all the time, so retry a bounded number of times.
    let mut tries = 0;
    loop {
        match openat2(
            root,
            relative,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Err(io::Errno::AGAIN) if tries < 128 => tries += 1,
            other => return other,
        }
    }
}

/// An `O_PATH` fd for `path` inside the root.
pub fn open(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    open_with(root, path, OFlags::PATH)
}

/// Symlinks followed while creating, the kernel's own limit (MAXSYMLINKS).
const MAX_LINKS: u32 = 40;

#[derive(Clone, Copy)]
enum Kind {
    Dir,
    File,
}

/// `mkdir -p` inside the root; returns an `O_PATH` fd of the directory.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    create(root, path, Kind::Dir, &mut 0)
}

/// Makes sure a regular file (or whatever already is there) exists at
/// `path` inside the root, creating its parents; returns an `O_PATH` fd.
pub fn create_file(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    create(root, path, Kind::File, &mut 0)
}

/// Creates the parent directories of `path` inside the root; returns an
/// `O_PATH` fd of the parent and the last component. `EINVAL` for the root
/// itself, which has no last component.
pub fn create_parent<'p>(root: BorrowedFd<'_>, path: &'p [u8]) -> io::Result<(OwnedFd, &'p [u8])> {
    let (parents, last) = split_last(path);
    let last = last.ok_or(Errno::INVAL)?;
    Ok((
        create(root, &join(parents.into_iter()), Kind::Dir, &mut 0)?,
        last,
    ))
}

/// Creates what `path` names, and its missing parents, one component at a
/// time. Each new entry is made with `mkdirat`/`mknodat` relative to its
/// parent's fd, which was resolved inside the root, under a single-component
/// name: so it is inside the root too. Neither call follows a symlink in
/// its last component; a dangling one (an image's `/etc/resolv.conf ->
/// ../run/...`) gives EEXIST, and then its target is created instead,
/// resolved inside the root like any path, as runc does.
fn create(root: BorrowedFd<'_>, path: &[u8], kind: Kind, links: &mut u32) -> io::Result<OwnedFd> {
    match open(root, path) {
        Err(Errno::NOENT) => {}
        other => return other,
    }
    let (parents, Some(name)) = split_last(path) else {
        return open(root, b".");
    };
    let parent_path = join(parents.into_iter());
    let parent = create(root, &parent_path, Kind::Dir, links)?;
    let made = match kind {
        Kind::Dir => mkdirat(&parent, name, Mode::from_raw_mode(0o755)),
        Kind::File => mknodat(
            &parent,
            name,
            FileType::RegularFile,
            Mode::from_raw_mode(0o644),
            0,
        ),
    };
    match made {
        // Just made by us, under a name without a slash: not a symlink, and
        // nothing else runs in the container yet to swap it for one.
        Ok(()) => openat(
            &parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ),
        Err(Errno::EXIST) => {
            // A racing creator (then it opens now), or a dangling symlink.
            match open(root, path) {
                Err(Errno::NOENT) => {}
                other => return other,
            }
            *links += 1;
            if *links > MAX_LINKS {
                return Err(Errno::LOOP);
            }
            let target = readlinkat(&parent, name, Vec::new())?;
            create(
                root,
                &link_target_path(&parent_path, target.as_bytes()),
                kind,
                links,
            )?;
            open(root, path)
        }
        Err(errno) => Err(errno),
    }
}

/// Where a symlink in directory `dir` (a path inside the root) that reads
/// `target` points: absolute targets start at the root, relative ones at
/// `dir`. Left unresolved: the kernel resolves it, inside the root.
pub fn link_target_path(dir: &[u8], target: &[u8]) -> Vec<u8> {
    if target.first() == Some(&b'/') || dir.is_empty() {
        return target.to_vec();
    }
    let mut path = dir.to_vec();
    path.push(b'/');
    path.extend_from_slice(target);
    path
}

fn join<'a>(parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_skip_empty_and_dot() {
        let parts: Vec<&[u8]> = components(b"//dev/./pts//ptmx/").collect();
        assert_eq!(parts, [&b"dev"[..], b"pts", b"ptmx"]);
    }

    #[test]
    fn split_last_of_root_is_none() {
        assert_eq!(split_last(b"/"), (vec![], None));
        assert_eq!(
            split_last(b"/dev/null"),
            (vec![&b"dev"[..]], Some(&b"null"[..]))
        );
    }

    #[test]
    fn link_targets_are_relative_to_their_directory_or_the_root() {
        assert_eq!(
            link_target_path(b"etc", b"../run/resolv.conf"),
            b"etc/../run/resolv.conf"
        );
        assert_eq!(link_target_path(b"etc", b"/run/x"), b"/run/x");
        assert_eq!(link_target_path(b"", b"tmp/x"), b"tmp/x");
    }

    #[test]
    fn dotdot_is_kept_for_the_kernel_to_clamp() {
        assert_eq!(join(components(b"/a/../../b")), b"a/../../b");
    }
}
