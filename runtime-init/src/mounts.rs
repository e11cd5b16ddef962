//! Step Mounts: the spec's mounts, in order, onto targets resolved inside
//! the rootfs.
//!
//! `plan_mount` is pure: from one `MountOp` it decides what to create at
//! the destination, which `mount(2)` calls to make with which flags, and
//! which fallback to try on which errno. `apply` is the thin loop that
//! resolves each target with `in_root` (never following a symlink out of
//! the rootfs) and mounts onto its `/proc/self/fd/N` magic link, so the
//! path is never looked up again. Also owns the `MS_*` constants and the
//! "keep the flags the kernel locked" rule shared with `readonly_paths`.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use corral_protocol::{InitChannel, MountOp, Step};
use rustix::fs::{FileType, Mode, OFlags, StatVfsMountFlags};
use rustix::io::{self, Errno};
use rustix::mount::{
    MountFlags, MountPropagationFlags, MoveMountFlags, mount, mount_change, mount_remount,
    move_mount,
};

use crate::channel;
use crate::copy_up;
use crate::error::{Error, Result};
use crate::in_root;
use crate::rootfs::Rootfs;
use crate::sys;

// mount(2) flags are an unsigned long (u64 in the protocol); every defined
// bit fits in the 32 of rustix's flag types.
pub const MS_RDONLY: u64 = MountFlags::RDONLY.bits() as u64;
pub const MS_NOSUID: u64 = MountFlags::NOSUID.bits() as u64;
pub const MS_NODEV: u64 = MountFlags::NODEV.bits() as u64;
pub const MS_NOEXEC: u64 = MountFlags::NOEXEC.bits() as u64;
pub const MS_NOATIME: u64 = MountFlags::NOATIME.bits() as u64;
pub const MS_NODIRATIME: u64 = MountFlags::NODIRATIME.bits() as u64;
pub const MS_RELATIME: u64 = MountFlags::RELATIME.bits() as u64;
pub const MS_STRICTATIME: u64 = MountFlags::STRICTATIME.bits() as u64;
pub const MS_NOSYMFOLLOW: u64 = MountFlags::NOSYMFOLLOW.bits() as u64;
pub const MS_BIND: u64 = MountFlags::BIND.bits() as u64;
pub const MS_REC: u64 = MountFlags::REC.bits() as u64;
pub const MS_SLAVE: u64 = MountPropagationFlags::DOWNSTREAM.bits() as u64;
pub const MS_SHARED: u64 = MountPropagationFlags::SHARED.bits() as u64;

const ATIME_FLAGS: u64 = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

/// The per-mount flags a bind remount can change (the kernel ignores them
/// on the first `MS_BIND` call).
const BIND_REMOUNT_FLAGS: u64 =
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW | ATIME_FLAGS;

/// What to create at a missing destination: a bind of a regular file needs
/// a file to mount onto, everything else a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    Dir,
    File,
}

/// One `mount(2)` call onto the (freshly resolved) target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountCall {
    /// `mount(source, target, fstype, flags, data)`.
    Mount {
        source: Vec<u8>,
        fstype: Option<String>,
        flags: u64,
        data: Option<String>,
    },
    /// `mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL)`.
    RemountBind { flags: u64 },
    /// `mount(NULL, target, NULL, flags, NULL)` with propagation flags.
    Propagation { flags: u64 },
    /// `mount_setattr(target, "", AT_EMPTY_PATH | AT_RECURSIVE, attr)`.
    SetAttrRecursive { set: u64, clear: u64 },
    /// `move_mount` of the detached mount the runtime sent onto the target.
    MoveDetached,
    /// A detached tmpfs filled with a copy of the target, then moved onto
    /// it (`tmpcopyup`, see `copy_up`).
    TmpfsCopyUp { flags: u64, data: Option<String> },
}

/// What to do instead when the first plan fails with one of `on`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub on: &'static [Errno],
    /// The host path the fallback binds; skipped when it does not exist.
    pub source: &'static str,
    pub message: &'static str,
    pub plan: Box<MountPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPlan {
    pub create: Create,
    pub calls: Vec<MountCall>,
    pub fallback: Option<Fallback>,
}

pub fn plan_mount(op: &MountOp, source_is_file: bool) -> MountPlan {
    let mut calls = Vec::new();
    let create = if op.flags & MS_BIND != 0 {
        if op.detached {
            calls.push(MountCall::MoveDetached);
        } else {
            let source = op.source.as_ref().map(|s| s.0.clone()).unwrap_or_default();
            calls.push(MountCall::Mount {
                source,
                fstype: None,
                flags: MS_BIND | (op.flags & MS_REC),
                data: None,
            });
        }
        let per_mount = op.flags & BIND_REMOUNT_FLAGS;
        if per_mount != 0 {
            calls.push(MountCall::RemountBind { flags: per_mount });
        }
        if source_is_file {
            Create::File
        } else {
            Create::Dir
        }
    } else if op.copy_up {
        calls.push(MountCall::TmpfsCopyUp {
            flags: op.flags,
            data: op.data.clone(),
        });
        Create::Dir
    } else {
        calls.push(MountCall::Mount {
            source: mount_source(op),
            fstype: op.fstype.clone(),
            flags: op.flags,
            data: op.data.clone(),
        });
        Create::Dir
    };
    if let Some(attr) = op.recursive {
        // After the mount and its remount: the `r*` options reach the
        // submounts an rbind brought along, which a remount does not.
        calls.push(MountCall::SetAttrRecursive {
            set: attr.set,
            clear: attr.clear,
        });
    }
    if op.propagation != 0 {
        calls.push(MountCall::Propagation {
            flags: op.propagation,
        });
    }
    MountPlan {
        create,
        calls,
        fallback: plan_fallback(op),
    }
}

/// The source of a non-bind mount: the spec's, else the fstype's name, as
/// mount(8) shows it.
fn mount_source(op: &MountOp) -> Vec<u8> {
    match (&op.source, &op.fstype) {
        (Some(source), _) => source.0.clone(),
        (None, Some(fstype)) => fstype.as_bytes().to_vec(),
        (None, None) => b"none".to_vec(),
    }
}

/// sysfs cannot be mounted without owning the netns (EPERM), and mqueue
/// without owning the ipcns or without the fs (ENODEV): bind the host's
/// instead, read-only for sysfs, as runc does.
fn plan_fallback(op: &MountOp) -> Option<Fallback> {
    let (on, source, extra, message): (&'static [Errno], _, _, _) = match op.fstype.as_deref()? {
        "sysfs" => (
            &[Errno::PERM],
            "/sys",
            MS_RDONLY,
            "sysfs mount denied; binding the host /sys",
        ),
        "mqueue" => (
            &[Errno::PERM, Errno::NODEV],
            "/dev/mqueue",
            0,
            "mqueue mount failed; binding the host /dev/mqueue",
        ),
        _ => return None,
    };
    let bind = MountOp {
        source: Some(source.into()),
        destination: op.destination.clone(),
        fstype: None,
        flags: op.flags | MS_BIND | MS_REC | extra,
        propagation: op.propagation,
        data: None,
        recursive: None,
        detached: false,
        copy_up: false,
    };
    Some(Fallback {
        on,
        source,
        message,
        plan: Box::new(plan_mount(&bind, false)),
    })
}

pub fn apply(channel: &InitChannel, root: &Rootfs, mounts: &[MountOp]) -> Result<()> {
    // Calls may enter their target (`sys::mount_target`) and return here
    // right after. Without a handle on the working directory, targets go
    // by /proc.
    let cwd = rustix::fs::open(
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok();
    for (index, op) in mounts.iter().enumerate() {
        let detached = if op.detached {
            let index = u32::try_from(index).expect("the runtime indexes mounts with u32");
            let fd = channel
                .recv_mount_fd(index)
                .map_err(|source| Error::Protocol {
                    op: "receive detached mount",
                    source,
                })?;
            Some(fd)
        } else {
            None
        };
        apply_one(root, op, detached, cwd.as_ref())?;
    }
    Ok(())
}

fn apply_one(
    root: &Rootfs,
    op: &MountOp,
    mut detached: Option<OwnedFd>,
    cwd: Option<&OwnedFd>,
) -> Result<()> {
    let dest = op.destination.as_bytes();
    let what = describe(op);
    let fail = |op: &'static str| {
        let what = what.clone();
        move |errno| Error::Mount {
            op,
            what,
            target: PathBuf::from(dest_path(dest)),
            errno,
        }
    };
    let source_is_file = match (&op.source, op.flags & MS_BIND != 0) {
        _ if detached.is_some() => {
            let fd = detached.as_ref().expect("checked by the guard");
            let st = rustix::fs::fstat(fd).map_err(fail("stat detached mount"))?;
            FileType::from_raw_mode(st.st_mode) != FileType::Directory
        }
        (Some(source), true) => {
            let st = rustix::fs::stat(source.as_path()).map_err(fail("stat source"))?;
            FileType::from_raw_mode(st.st_mode) != FileType::Directory
        }
        _ => false,
    };
    let plan = plan_mount(op, source_is_file);
    let created = match plan.create {
        Create::Dir => in_root::mkdir_all(root.fd(), dest),
        Create::File => in_root::create_file(root.fd(), dest),
    };
    let created = created.map_err(fail("create target"))?;
    let result = run_calls(root, dest, &plan.calls, Some(created), &mut detached, cwd)
        .map_err(|(op, errno)| fail(op)(errno));
    match (result, &plan.fallback) {
        (Err(Error::Mount { errno, .. }), Some(fb))
            if fb.on.contains(&errno) && Path::new(fb.source).exists() =>
        {
            channel::warn(Step::Mounts, fb.message, Some(dest));
            run_calls(root, dest, &fb.plan.calls, None, &mut None, cwd)
                .map_err(|(op, errno)| fail(op)(errno))
        }
        (result, _) => result,
    }
}

fn run_calls(
    root: &Rootfs,
    dest: &[u8],
    calls: &[MountCall],
    mut fresh: Option<OwnedFd>,
    detached: &mut Option<OwnedFd>,
    cwd: Option<&OwnedFd>,
) -> std::result::Result<(), (&'static str, Errno)> {
    for call in calls {
        // Resolve afresh for every call: after a mount, an fd opened before
        // it still names the covered directory, not the new mount. `fresh`,
        // the target's fd from its creation just before, serves the first.
        let target_fd = match fresh.take() {
            Some(fd) => fd,
            None => in_root::open(root.fd(), dest).map_err(|e| ("open target", e))?,
        };
        // Enter the target only for a call whose other arguments do not
        // resolve against the working directory, and come back after it:
        // a relative source, or paths in a filesystem's options, still
        // resolve where they always did.
        let entered = cwd.filter(|_| independent_of_cwd(call));
        let target = || match entered {
            Some(_) => sys::mount_target(target_fd.as_fd()),
            None => sys::proc_fd_path(target_fd.as_fd()),
        };
        let result = run_call(call, target, target_fd.as_fd(), detached);
        if let Some(cwd) = entered {
            rustix::process::fchdir(cwd)
                .map_err(|e| ("return to the working directory after", e))?;
        }
        result?;
    }
    Ok(())
}

/// Whether `call` names no path that the kernel resolves against the
/// working directory, besides its target: a bind of an absolute source, a
/// filesystem that takes no device and no paths in its options, or a
/// change to the target's own flags.
fn independent_of_cwd(call: &MountCall) -> bool {
    match call {
        MountCall::Mount {
            source,
            fstype,
            flags,
            ..
        } => {
            if flags & MS_BIND != 0 {
                source.first() == Some(&b'/')
            } else {
                matches!(
                    fstype.as_deref(),
                    Some("proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" | "cgroup" | "cgroup2")
                )
            }
        }
        MountCall::RemountBind { .. } | MountCall::Propagation { .. } => true,
        // These go by fd.
        MountCall::SetAttrRecursive { .. }
        | MountCall::MoveDetached
        | MountCall::TmpfsCopyUp { .. } => false,
    }
}

/// One call onto the target: `target` names it for the path-based calls,
/// `target_fd` is it.
fn run_call(
    call: &MountCall,
    target: impl Fn() -> CString,
    target_fd: BorrowedFd<'_>,
    detached: &mut Option<OwnedFd>,
) -> std::result::Result<(), (&'static str, Errno)> {
    match call {
        MountCall::Mount {
            source,
            fstype,
            flags,
            data,
        } => {
            mount_with(
                source,
                &target(),
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            )
            .map_err(|e| ("mount", e))?;
        }
        MountCall::RemountBind { flags } => {
            remount_bind(&target(), *flags).map_err(|e| ("remount", e))?;
        }
        MountCall::Propagation { flags } => {
            propagation_flags(*flags)
                .and_then(|flags| mount_change(target(), flags))
                .map_err(|e| ("set propagation of", e))?;
        }
        MountCall::SetAttrRecursive { set, clear } => {
            sys::mount_setattr(target_fd, true, *set, *clear).map_err(|e| ("mount_setattr", e))?;
        }
        MountCall::MoveDetached => {
            let fd = detached
                .take()
                .ok_or(("move detached mount", Errno::BADF))?;
            move_mount(
                fd.as_fd(),
                c"",
                target_fd,
                c"",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(|e| ("move_mount", e))?;
        }
        MountCall::TmpfsCopyUp { flags, data } => {
            copy_up::mount_tmpfs(target_fd, *flags, data.as_deref())?;
        }
    }
    Ok(())
}

fn mount_with(
    source: &[u8],
    target: &CString,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    let data = data
        .map(CString::new)
        .transpose()
        .map_err(|_| Errno::INVAL)?;
    mount(
        source,
        target.as_c_str(),
        fstype.unwrap_or(""),
        mount_flags(flags)?,
        data.as_deref(),
    )
}

/// `MS_REMOUNT | MS_BIND | flags`; on EPERM, again with the flags the
/// kernel may have locked on the mount (a mount inherited from a more
/// privileged mount namespace keeps its nosuid/nodev/noexec/ro/atime).
pub fn remount_bind(target: &CString, flags: u64) -> io::Result<()> {
    let remount = |flags| {
        mount_remount(
            target.as_c_str(),
            MountFlags::BIND | mount_flags(flags)?,
            "",
        )
    };
    match remount(flags) {
        Err(Errno::PERM) => remount(with_locked(flags, existing_flags(target)?)),
        other => other,
    }
}

/// `flags` plus the locked flags of a mount whose current flags are
/// `existing`; existing atime flags only when `flags` names none.
pub fn with_locked(flags: u64, existing: u64) -> u64 {
    let mut out = flags | (existing & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
    if flags & ATIME_FLAGS == 0 {
        out |= existing & ATIME_FLAGS;
    }
    out
}

/// The `MS_*` flags of the mount `path` is on (statvfs(3): `ST_*` values
/// equal the `MS_*` ones).
pub fn existing_flags(path: &CString) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path.as_c_str())?;
    let keep = StatVfsMountFlags::RDONLY
        | StatVfsMountFlags::NOSUID
        | StatVfsMountFlags::NODEV
        | StatVfsMountFlags::NOEXEC
        | StatVfsMountFlags::NOATIME
        | StatVfsMountFlags::NODIRATIME
        | StatVfsMountFlags::RELATIME;
    Ok((st.f_flag & keep).bits())
}

pub fn mount_flags(flags: u64) -> io::Result<MountFlags> {
    Ok(MountFlags::from_bits_retain(
        u32::try_from(flags).map_err(|_| Errno::INVAL)?,
    ))
}

pub fn propagation_flags(flags: u64) -> io::Result<MountPropagationFlags> {
    Ok(MountPropagationFlags::from_bits_retain(
        u32::try_from(flags).map_err(|_| Errno::INVAL)?,
    ))
}

/// `proc`, `tmpfs`..., or `bind of "/host/path"`, for error messages.
fn describe(op: &MountOp) -> String {
    match (&op.fstype, &op.source) {
        (Some(fstype), _) => fstype.clone(),
        (None, Some(source)) => format!("bind of {:?}", source.as_path()),
        (None, None) => "bind".to_owned(),
    }
}

fn dest_path(dest: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(source: Option<&str>, dest: &str, fstype: Option<&str>, flags: u64) -> MountOp {
        MountOp {
            source: source.map(Into::into),
            destination: dest.into(),
            fstype: fstype.map(Into::into),
            flags,
            propagation: 0,
            data: None,
            recursive: None,
            detached: false,
            copy_up: false,
        }
    }

    #[test]
    fn detached_bind_moves_then_remounts_and_copy_up_replaces_the_mount() {
        let mut idmapped = op(Some("/h"), "/d", None, MS_BIND | MS_REC | MS_RDONLY);
        idmapped.detached = true;
        let plan = plan_mount(&idmapped, false);
        assert_eq!(
            plan.calls,
            [
                MountCall::MoveDetached,
                MountCall::RemountBind { flags: MS_RDONLY }
            ]
        );
        let mut tmp = op(None, "/t", Some("tmpfs"), MS_NOSUID);
        tmp.copy_up = true;
        tmp.data = Some("mode=700".into());
        assert_eq!(
            plan_mount(&tmp, false).calls,
            [MountCall::TmpfsCopyUp {
                flags: MS_NOSUID,
                data: Some("mode=700".into())
            }]
        );
    }

    #[test]
    fn plain_bind_is_one_call_onto_a_dir() {
        let plan = plan_mount(&op(Some("/data"), "/data", None, MS_BIND | MS_REC), false);
        assert_eq!(plan.create, Create::Dir);
        assert_eq!(
            plan.calls,
            [MountCall::Mount {
                source: b"/data".to_vec(),
                fstype: None,
                flags: MS_BIND | MS_REC,
                data: None
            }]
        );
        assert_eq!(plan.fallback, None);
    }

    #[test]
    fn readonly_file_bind_binds_then_remounts_onto_a_file() {
        let flags = MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        let plan = plan_mount(&op(Some("/etc/hosts"), "/etc/hosts", None, flags), true);
        assert_eq!(plan.create, Create::File);
        assert_eq!(
            plan.calls,
            [
                MountCall::Mount {
                    source: b"/etc/hosts".to_vec(),
                    fstype: None,
                    flags: MS_BIND,
                    data: None
                },
                MountCall::RemountBind {
                    flags: MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
                },
            ]
        );
    }

    #[test]
    fn atime_flags_alone_trigger_a_remount() {
        let plan = plan_mount(&op(Some("/x"), "/x", None, MS_BIND | MS_NOATIME), false);
        assert_eq!(plan.calls[1], MountCall::RemountBind { flags: MS_NOATIME });
    }

    #[test]
    fn fs_mount_passes_flags_and_data_and_names_its_source() {
        let mut tmpfs = op(None, "/dev", Some("tmpfs"), MS_NOSUID | MS_STRICTATIME);
        tmpfs.data = Some("mode=755,size=65536k".into());
        let plan = plan_mount(&tmpfs, true);
        assert_eq!(plan.create, Create::Dir, "only binds create files");
        assert_eq!(
            plan.calls,
            [MountCall::Mount {
                source: b"tmpfs".to_vec(),
                fstype: Some("tmpfs".into()),
                flags: MS_NOSUID | MS_STRICTATIME,
                data: Some("mode=755,size=65536k".into()),
            }]
        );
    }

    #[test]
    fn propagation_is_applied_last() {
        let mut shared = op(Some("/a"), "/a", None, MS_BIND | MS_RDONLY);
        shared.propagation = MS_SHARED | MS_REC;
        let plan = plan_mount(&shared, false);
        assert_eq!(plan.calls.len(), 3);
        assert_eq!(
            plan.calls[2],
            MountCall::Propagation {
                flags: MS_SHARED | MS_REC
            }
        );
    }

    #[test]
    fn sysfs_falls_back_to_readonly_recursive_bind_of_host_sys_on_eperm() {
        let sysfs = op(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
        );
        let fb = plan_mount(&sysfs, false)
            .fallback
            .expect("sysfs has a fallback");
        assert_eq!(fb.on, [Errno::PERM]);
        assert_eq!(fb.source, "/sys");
        assert_eq!(
            fb.plan.calls,
            [
                MountCall::Mount {
                    source: b"/sys".to_vec(),
                    fstype: None,
                    flags: MS_BIND | MS_REC,
                    data: None
                },
                MountCall::RemountBind {
                    flags: MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
                },
            ]
        );
        assert_eq!(fb.plan.fallback, None);
    }

    #[test]
    fn mqueue_falls_back_on_eperm_and_enodev() {
        let mqueue = op(Some("mqueue"), "/dev/mqueue", Some("mqueue"), MS_NOSUID);
        let fb = plan_mount(&mqueue, false)
            .fallback
            .expect("mqueue has a fallback");
        assert_eq!(fb.on, [Errno::PERM, Errno::NODEV]);
        assert_eq!(fb.source, "/dev/mqueue");
    }

    #[test]
    fn locked_flags_are_kept_and_atime_only_when_unset() {
        let existing = MS_NOSUID | MS_NODEV | MS_RELATIME;
        assert_eq!(
            with_locked(MS_RDONLY, existing),
            MS_RDONLY | MS_NOSUID | MS_NODEV | MS_RELATIME
        );
        assert_eq!(
            with_locked(MS_NOATIME, existing),
            MS_NOATIME | MS_NOSUID | MS_NODEV
        );
    }

    #[test]
    fn flags_above_32_bits_are_rejected() {
        assert_eq!(mount_flags(1 << 40).unwrap_err(), Errno::INVAL);
        assert_eq!(mount_flags(MS_BIND).unwrap(), MountFlags::BIND);
    }
}
