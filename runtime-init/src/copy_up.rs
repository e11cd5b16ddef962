//! `tmpcopyup` (part of Step Mounts): a tmpfs that starts with a copy of
//! what the rootfs had where it is mounted.
//!
//! The tmpfs is made detached (`fsopen`/`fsconfig`/`fsmount`), filled
//! through its fd, and only then moved onto the destination, so the
//! container never sees it half-filled and the copy never goes through a
//! path. The source is the destination directory as the init resolved it
//! inside the rootfs; below it every entry is reached with `*at` calls
//! relative to directory fds and with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so
//! a symlink in the image is copied as a symlink and never followed, in or
//! out of the rootfs.
//!
//! Copied: directories, regular files (contents), symlinks, FIFOs and
//! device nodes, each with its mode (set-id bits included), owner and
//! access/modification times. Not copied: sockets (meaningless without
//! their listener), extended attributes, and hard links (each name gets a
//! file of its own). The tmpfs root keeps the tmpfs's own mode (`mode=`).

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid, chownat, fchmod, fchown,
    fstat, futimens, mkdirat, mknodat, openat, readlinkat, statat, symlinkat, utimensat,
};
use rustix::io::{self, Errno};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create, fsconfig_set_flag,
    fsconfig_set_string, fsmount, fsopen, move_mount,
};

use crate::mounts::{
    MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_NOSYMFOLLOW, MS_RDONLY,
    MS_STRICTATIME,
};
use crate::sys;

/// Directory depth past which the copy gives up (ELOOP): bounds the
/// recursion on a hostile image.
const MAX_DEPTH: u32 = 256;

/// Superblock flags `fsconfig` takes by name (fs_context.c).
const SB_FLAGS: &[(u64, &str)] = &[
    (rustix::mount::MountFlags::SYNCHRONOUS.bits() as u64, "sync"),
    (rustix::mount::MountFlags::DIRSYNC.bits() as u64, "dirsync"),
    (
        rustix::mount::MountFlags::LAZYTIME.bits() as u64,
        "lazytime",
    ),
];

/// Per-mount `MS_*` flags and their `MOUNT_ATTR_*` equivalents.
const ATTRS: &[(u64, MountAttrFlags)] = &[
    (MS_NOSUID, MountAttrFlags::MOUNT_ATTR_NOSUID),
    (MS_NODEV, MountAttrFlags::MOUNT_ATTR_NODEV),
    (MS_NOEXEC, MountAttrFlags::MOUNT_ATTR_NOEXEC),
    (MS_NOATIME, MountAttrFlags::MOUNT_ATTR_NOATIME),
    (MS_STRICTATIME, MountAttrFlags::MOUNT_ATTR_STRICTATIME),
    (MS_NODIRATIME, MountAttrFlags::MOUNT_ATTR_NODIRATIME),
    (MS_NOSYMFOLLOW, MountAttrFlags::from_bits_retain(0x20_0000)),
];

/// Makes a tmpfs with `flags` and `data`, copies the directory `target`
/// (an `O_PATH` fd resolved inside the rootfs) into it, and moves it onto
/// `target`. Errors name the operation that failed.
pub fn mount_tmpfs(
    target: BorrowedFd<'_>,
    flags: u64,
    data: Option<&str>,
) -> Result<(), (&'static str, Errno)> {
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| ("fsopen tmpfs", e))?;
    configure(&fs, flags, data).map_err(|e| ("fsconfig tmpfs", e))?;
    fsconfig_create(&fs).map_err(|e| ("create tmpfs", e))?;
    // Writable until the copy is done; `ro` comes after it.
    let attrs = ATTRS
        .iter()
        .filter(|(ms, _)| flags & ms != 0)
        .fold(MountAttrFlags::empty(), |acc, (_, attr)| acc | *attr);
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(|e| ("fsmount", e))?;
    let src = open_dir(target, c".").map_err(|e| ("open copy-up source", e))?;
    let dst = open_dir(mnt.as_fd(), c".").map_err(|e| ("open new tmpfs", e))?;
    copy_dir(&src, &dst, 0).map_err(|e| ("copy up", e))?;
    drop((src, dst));
    if flags & MS_RDONLY != 0 {
        sys::mount_setattr(mnt.as_fd(), false, 0x1, 0).map_err(|e| ("make tmpfs read-only", e))?;
    }
    move_mount(
        mnt.as_fd(),
        c"",
        target,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| ("move_mount", e))
}

/// `key=value` and `key` data options, and the superblock flags.
fn configure(fs: &OwnedFd, flags: u64, data: Option<&str>) -> io::Result<()> {
    for option in data.into_iter().flat_map(|d| d.split(',')) {
        match option.split_once('=') {
            Some((key, value)) => fsconfig_set_string(fs, key, value)?,
            None if option.is_empty() => {}
            None => fsconfig_set_flag(fs, option)?,
        }
    }
    for (ms, name) in SB_FLAGS {
        if flags & ms != 0 {
            fsconfig_set_flag(fs, *name)?;
        }
    }
    Ok(())
}

fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Copies every entry of `src` into `dst`, depth first.
fn copy_dir(src: &OwnedFd, dst: &OwnedFd, depth: u32) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(Errno::LOOP);
    }
    let mut dir = rustix::fs::Dir::read_from(src)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        copy_entry(src, dst, name, depth)?;
    }
    Ok(())
}

fn copy_entry(src: &OwnedFd, dst: &OwnedFd, name: &CStr, depth: u32) -> io::Result<()> {
    let st = statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
            let (from, to) = (open_dir(src.as_fd(), name)?, open_dir(dst.as_fd(), name)?);
            copy_dir(&from, &to, depth + 1)?;
            // Last: copying the children changed the directory's times.
            set_meta(&to, &st)
        }
        FileType::RegularFile => copy_file(src, dst, name, &st),
        FileType::Symlink => {
            let target = readlinkat(src, name, Vec::new())?;
            symlinkat(target.as_c_str(), dst, name)?;
            set_meta_at(dst, name, &st, AtFlags::SYMLINK_NOFOLLOW)
        }
        kind @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
            let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
            mknodat(dst, name, kind, mode, st.st_rdev as _)?;
            set_meta_at(dst, name, &st, AtFlags::empty())?;
            // mknod's mode went through the umask; fchmodat is not for
            // symlinks, and this is none.
            rustix::fs::chmodat(dst, name, mode, AtFlags::empty())
        }
        FileType::Socket | FileType::Unknown => Ok(()),
    }
}

fn copy_file(src: &OwnedFd, dst: &OwnedFd, name: &CStr, st: &Stat) -> io::Result<()> {
    // O_NONBLOCK: should the entry have become a FIFO since the stat, the
    // open does not hang; the fstat below then refuses it.
    let from = openat(
        src,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if FileType::from_raw_mode(fstat(&from)?.st_mode) != FileType::RegularFile {
        return Err(Errno::AGAIN);
    }
    let to = openat(
        dst,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let (mut reader, mut writer) = (std::fs::File::from(from), std::fs::File::from(to));
    std::io::copy(&mut reader, &mut writer)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    set_meta(&OwnedFd::from(writer), st)
}

/// Owner, then mode (a chown clears set-id bits), then times.
fn set_meta(fd: &OwnedFd, st: &Stat) -> io::Result<()> {
    fchown(fd, Some(uid(st)), Some(gid(st)))?;
    fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    futimens(fd, &times(st))
}

fn set_meta_at(dir: &OwnedFd, name: &CStr, st: &Stat, flags: AtFlags) -> io::Result<()> {
    chownat(dir, name, Some(uid(st)), Some(gid(st)), flags)?;
    utimensat(dir, name, &times(st), flags)
}

fn uid(st: &Stat) -> Uid {
    Uid::from_raw(st.st_uid)
}

fn gid(st: &Stat) -> Gid {
    Gid::from_raw(st.st_gid)
}

#[allow(clippy::unnecessary_cast)] // the field types differ per architecture
fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}
