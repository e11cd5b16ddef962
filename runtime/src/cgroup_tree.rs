//! The v1 `cgroup` mount built by the runtime, while the init works.
//!
//! Without a cgroup namespace, a v1 host's `cgroup` mount is a tmpfs with
//! a bind of the container's directory in each hierarchy under it, made
//! read-only at the end (`plan::mounts`). Done by the init, that is about
//! forty calls on its critical path (a path walk, `mkdir`, `stat` and
//! `mount` per hierarchy), while the runtime's thread waits for `Ready`.
//! On kernels that can mount into a detached tree (6.15 and later), the
//! runtime builds the same tree instead, after the spec has gone and while
//! the init sets up the rest: `fsopen`/`fsmount` of the tmpfs, a
//! directory and an `open_tree` clone per hierarchy moved into it, one
//! recursive `mount_setattr`. The init gets the tree's fd in a `MountFd`
//! message and moves it onto the destination in one call, as it does with
//! idmapped binds (`idmap`).
//!
//! Used only when the container has no new user namespace (the init then
//! moves a tree owned by the host's root, as it would bind one) and the
//! probe below succeeded; otherwise the init's ops stay as planned.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use corral_protocol::MountOp;
use rustix::fs::{CWD, Mode, mkdirat};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use crate::error::{Error, Result};
use crate::idmap::Detached;
use crate::plan::Plan;

/// One tree to build, for op `op` of the init's mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeRequest {
    /// Index of its op in `InitSpec::mounts`.
    pub op: u32,
    /// `(directory name in the tmpfs, host directory to bind there)`, one
    /// per hierarchy, in mount order.
    pub binds: Vec<(OsString, PathBuf)>,
    /// `MOUNT_ATTR_*` flags for the whole tree (read-only, nosuid...).
    pub attrs: u64,
}

/// Whether this kernel and this process can mount into a detached tree:
/// tried once per process on a scratch tmpfs.
pub(crate) fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let probe = || -> rustix::io::Result<()> {
            let root = tmpfs()?;
            mkdirat(&root, "a", Mode::from_raw_mode(0o755))?;
            let copy = open_tree(
                &root,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )?;
            move_mount(
                &copy,
                "",
                &root,
                "a",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        let result = probe();
        tracing::debug!(?result, "mounting into a detached tree");
        result.is_ok()
    })
}

/// A detached tmpfs, `mode=755`, named `tmpfs`.
fn tmpfs() -> rustix::io::Result<OwnedFd> {
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    // The source the init's `mount(2)` gave it: mountinfo shows the same.
    fsconfig_set_string(&fs, "source", "tmpfs")?;
    fsconfig_set_string(&fs, "mode", "755")?;
    fsconfig_create(&fs)?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
}

/// Replaces the ops of each v1 `cgroup` mount in `plan` with one detached
/// op, and records in `plan.cgroup_trees` what the runtime must build for
/// them. Op indices after a replaced run (idmapped binds', other trees')
/// shift accordingly.
pub(crate) fn collapse(plan: &mut Plan) {
    let mut runs = std::mem::take(&mut plan.cgroup_v1_mounts);
    runs.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        let ops = &mut plan.init.mounts;
        let Some(request) = request_for(&ops[run.clone()], run.start) else {
            continue;
        };
        let removed = u32::try_from(run.len() - 1).expect("a mount expands to few ops");
        let start = request.op;
        let single = MountOp {
            source: Some("cgroup".into()),
            destination: ops[run.start].destination.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            propagation: 0,
            data: None,
            recursive: None,
            detached: true,
            copy_up: false,
        };
        ops.splice(run, [single]);
        for req in plan.idmapped.iter_mut() {
            if req.op > start {
                req.op -= removed;
            }
        }
        for later in out.iter_mut() {
            let later: &mut TreeRequest = later;
            if later.op > start {
                later.op -= removed;
            }
        }
        out.push(request);
    }
    out.reverse();
    plan.cgroup_trees = out;
}

/// The tree for one expanded `cgroup` mount: `ops[0]` the tmpfs at the
/// destination, then binds below it, then maybe the final remount.
/// `None` for anything else (left to the init as planned).
fn request_for(ops: &[MountOp], start: usize) -> Option<TreeRequest> {
    let (tmpfs, rest) = ops.split_first()?;
    if tmpfs.fstype.as_deref() != Some("tmpfs") || tmpfs.detached || tmpfs.copy_up {
        return None;
    }
    let dest = tmpfs.destination.as_bytes();
    let (binds, last) = match rest.split_last() {
        Some((last, binds)) if last.flags & libc::MS_REMOUNT != 0 => (binds, Some(last)),
        _ => (rest, None),
    };
    let mut attrs = crate::plan::mount_attrs_of(tmpfs.flags);
    let mut out = Vec::with_capacity(binds.len());
    for b in binds {
        let name = b
            .destination
            .as_bytes()
            .strip_prefix(dest)?
            .strip_prefix(b"/")?;
        if b.fstype.is_some() || b.flags & libc::MS_BIND == 0 || b.detached || name.contains(&b'/')
        {
            return None;
        }
        attrs |= crate::plan::mount_attrs_of(b.flags);
        let source = b.source.as_ref()?.as_path().to_path_buf();
        out.push((std::ffi::OsStr::from_bytes(name).to_os_string(), source));
    }
    if let Some(last) = last {
        if last.destination.as_bytes() != dest {
            return None;
        }
        attrs |= crate::plan::mount_attrs_of(last.flags);
        if let Some(r) = last.recursive {
            attrs |= r.set;
        }
    }
    Some(TreeRequest {
        op: u32::try_from(start).ok()?,
        binds: out,
        attrs,
    })
}

/// Builds the tree of `req`: a tmpfs with each hierarchy's directory
/// bound (recursively) into a directory of its own, everything made a
/// slave of the host's mounts (as a bind made after the root went
/// `rslave`) and given `req.attrs`.
pub(crate) fn build(req: &TreeRequest) -> Result<Detached> {
    let fail = |what: String| move |e| Error::sys(format!("cgroup mount: {what}"), e);
    let root = tmpfs().map_err(fail("make the tmpfs".into()))?;
    for (name, source) in &req.binds {
        mkdirat(&root, name.as_os_str(), Mode::from_raw_mode(0o755))
            .map_err(fail(format!("mkdir {name:?}")))?;
        let copy = open_tree(
            CWD,
            source,
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(fail(format!("open_tree {source:?}")))?;
        move_mount(
            &copy,
            "",
            &root,
            name.as_os_str(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(fail(format!("bind {source:?}")))?;
    }
    crate::sys::mount_set_attrs_recursive(root.as_fd(), req.attrs, libc::MS_SLAVE)
        .map_err(|e| Error::sys("cgroup mount: mount_setattr", e))?;
    Ok(Detached {
        op: req.op,
        fd: root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup_layout::Layout;
    use crate::plan::IdmapRequest;
    use corral_protocol::StartVia;
    use serde_json::json;

    /// `<linux/mount.h>`.
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const MOUNT_ATTR_NOEXEC: u64 = 0x8;

    fn plan_with(mounts: serde_json::Value, cgroupns: bool) -> Plan {
        let mut namespaces = vec![json!({"type": "mount"})];
        if cgroupns {
            namespaces.push(json!({"type": "cgroup"}));
        }
        let value = json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "mounts": mounts,
            "linux": {"namespaces": namespaces}
        });
        let layout = Layout::parse(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
            "2:memory:/\n1:cpu:/\n",
        );
        let spec = crate::Spec::from_oci(serde_json::from_value(value).unwrap(), "/bundle");
        crate::plan::plan("c1", &spec, &layout, StartVia::Socket).unwrap()
    }

    fn runc_mounts() -> serde_json::Value {
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"]}
        ])
    }

    #[test]
    fn the_expanded_v1_mount_becomes_one_detached_op() {
        let mut plan = plan_with(runc_mounts(), false);
        // proc; tmpfs, cpu, memory, final remount; the bind.
        assert_eq!(plan.cgroup_v1_mounts, vec![1..5]);
        assert_eq!(plan.init.mounts.len(), 6);
        // An idmapped bind after it, as `plan` would record one.
        plan.idmapped.push(IdmapRequest {
            op: 5,
            field: "mounts[2]".into(),
            source: "/srv".into(),
            tree: true,
            recursive: false,
            userns: crate::plan::IdmapUserns::Container,
        });
        collapse(&mut plan);
        let trees = &plan.cgroup_trees;
        let dests: Vec<_> = plan
            .init
            .mounts
            .iter()
            .map(|m| m.destination.as_path().to_owned())
            .collect();
        assert_eq!(
            dests,
            ["/proc", "/sys/fs/cgroup", "/data"].map(PathBuf::from)
        );
        let op = &plan.init.mounts[1];
        assert!(op.detached && op.fstype.is_none() && op.flags & libc::MS_BIND != 0);
        assert_eq!(op.flags & libc::MS_RDONLY, 0, "the tree comes read-only");
        assert_eq!(
            *trees,
            [TreeRequest {
                op: 1,
                binds: vec![
                    ("cpu".into(), "/sys/fs/cgroup/cpu".into()),
                    ("memory".into(), "/sys/fs/cgroup/memory".into()),
                ],
                attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            }]
        );
        assert_eq!(
            plan.idmapped[0].op, 2,
            "later ops' indices follow the shrink"
        );
        assert!(plan.cgroup_v1_mounts.is_empty());
    }

    #[test]
    fn with_a_cgroup_namespace_the_hierarchies_stay_the_inits() {
        let plan = plan_with(runc_mounts(), true);
        assert!(plan.cgroup_v1_mounts.is_empty());
    }

    #[test]
    fn two_cgroup_mounts_each_collapse_with_their_own_index() {
        let mut plan = plan_with(
            json!([
                {"destination": "/a", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/b", "type": "cgroup", "source": "cgroup"}
            ]),
            false,
        );
        assert_eq!(plan.cgroup_v1_mounts, [0..4, 5..8]);
        collapse(&mut plan);
        let trees = &plan.cgroup_trees;
        assert_eq!(plan.init.mounts.len(), 3);
        assert_eq!(trees.iter().map(|t| t.op).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(trees[0].attrs, MOUNT_ATTR_RDONLY);
        assert_eq!(trees[1].attrs, 0, "no options: a writable tree, as planned");
    }
}
