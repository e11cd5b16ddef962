//! Translates the OCI `mounts` list into the init's [`MountOp`]s: option
//! strings to `MS_*` flags and data, bind sources made absolute, and the
//! `cgroup` mount expanded for the host's cgroup layout.
//!
//! Pure functions; the init applies the result.

use std::path::{Path, PathBuf};

use corral_protocol::{MountAttr, MountOp, RawPath};

use crate::cgroup_layout::{Hierarchy, Layout};
use crate::error::{Error, Result};

const MS_REC: u64 = libc::MS_REC;

/// What one option string does.
enum Opt {
    Set(u64),
    Clear(u64),
    Propagation(u64),
    Data,
}

/// The `mount(8)` option vocabulary runc accepts.
fn classify(option: &str) -> Opt {
    use Opt::*;
    match option {
        "defaults" => Set(0),
        "ro" => Set(libc::MS_RDONLY),
        "rw" => Clear(libc::MS_RDONLY),
        "nosuid" => Set(libc::MS_NOSUID),
        "suid" => Clear(libc::MS_NOSUID),
        "nodev" => Set(libc::MS_NODEV),
        "dev" => Clear(libc::MS_NODEV),
        "noexec" => Set(libc::MS_NOEXEC),
        "exec" => Clear(libc::MS_NOEXEC),
        "sync" => Set(libc::MS_SYNCHRONOUS),
        "async" => Clear(libc::MS_SYNCHRONOUS),
        "dirsync" => Set(libc::MS_DIRSYNC),
        "mand" => Set(libc::MS_MANDLOCK),
        "nomand" => Clear(libc::MS_MANDLOCK),
        "noatime" => Set(libc::MS_NOATIME),
        "atime" => Clear(libc::MS_NOATIME),
        "nodiratime" => Set(libc::MS_NODIRATIME),
        "diratime" => Clear(libc::MS_NODIRATIME),
        "relatime" => Set(libc::MS_RELATIME),
        "norelatime" => Clear(libc::MS_RELATIME),
        "strictatime" => Set(libc::MS_STRICTATIME),
        "nostrictatime" => Clear(libc::MS_STRICTATIME),
        "lazytime" => Set(libc::MS_LAZYTIME),
        "nolazytime" => Clear(libc::MS_LAZYTIME),
        "silent" => Set(libc::MS_SILENT),
        "loud" => Clear(libc::MS_SILENT),
        "iversion" => Set(libc::MS_I_VERSION),
        "noiversion" => Clear(libc::MS_I_VERSION),
        "bind" => Set(libc::MS_BIND),
        "rbind" => Set(libc::MS_BIND | MS_REC),
        "remount" => Set(libc::MS_REMOUNT),
        "private" => Propagation(libc::MS_PRIVATE),
        "rprivate" => Propagation(libc::MS_PRIVATE | MS_REC),
        "shared" => Propagation(libc::MS_SHARED),
        "rshared" => Propagation(libc::MS_SHARED | MS_REC),
        "slave" => Propagation(libc::MS_SLAVE),
        "rslave" => Propagation(libc::MS_SLAVE | MS_REC),
        "unbindable" => Propagation(libc::MS_UNBINDABLE),
        "runbindable" => Propagation(libc::MS_UNBINDABLE | MS_REC),
        _ => Data,
    }
}

/// Options that are no `mount(2)` flag: idmapped binds (planned in
/// `plan::idmap`) and `tmpcopyup` (tmpfs only).
const IDMAP: &str = "idmap";
const RIDMAP: &str = "ridmap";
const TMPCOPYUP: &str = "tmpcopyup";

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// The `MOUNT_ATTR_*` bits of the `MS_RDONLY`, `MS_NOSUID`, `MS_NODEV` and
/// `MS_NOEXEC` in `ms` (the access flags that are bits in both).
pub(crate) fn mount_attrs_of(ms: u64) -> u64 {
    [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ]
    .into_iter()
    .filter(|(flag, _)| ms & flag != 0)
    .fold(0, |acc, (_, attr)| acc | attr)
}

/// A recursive option (runc's `r*` set, applied with
/// `mount_setattr(AT_RECURSIVE)`): `(set, clear)` bits. The atime options
/// are an enum in the kernel, not bits: each picks one mode and clears
/// `MOUNT_ATTR__ATIME`. The negated ones pick the mode `mount(8)` means:
/// `ratime` and `rnostrictatime` give the default `relatime`,
/// `rnorelatime` gives `strictatime`.
fn recursive_attr(option: &str) -> Option<(u64, u64)> {
    let atime = |mode| Some((mode, MOUNT_ATTR_ATIME));
    match option {
        "rro" => Some((MOUNT_ATTR_RDONLY, 0)),
        "rrw" => Some((0, MOUNT_ATTR_RDONLY)),
        "rnosuid" => Some((MOUNT_ATTR_NOSUID, 0)),
        "rsuid" => Some((0, MOUNT_ATTR_NOSUID)),
        "rnodev" => Some((MOUNT_ATTR_NODEV, 0)),
        "rdev" => Some((0, MOUNT_ATTR_NODEV)),
        "rnoexec" => Some((MOUNT_ATTR_NOEXEC, 0)),
        "rexec" => Some((0, MOUNT_ATTR_NOEXEC)),
        "rnodiratime" => Some((MOUNT_ATTR_NODIRATIME, 0)),
        "rdiratime" => Some((0, MOUNT_ATTR_NODIRATIME)),
        "rnosymfollow" => Some((MOUNT_ATTR_NOSYMFOLLOW, 0)),
        "rsymfollow" => Some((0, MOUNT_ATTR_NOSYMFOLLOW)),
        "rnoatime" => atime(MOUNT_ATTR_NOATIME),
        "rstrictatime" | "rnorelatime" => atime(MOUNT_ATTR_STRICTATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => atime(MOUNT_ATTR_RELATIME),
        _ => None,
    }
}

/// Folds one recursive option into `attr`: a later option wins over an
/// earlier one on the same bits.
fn add_recursive(attr: &mut MountAttr, (set, clear): (u64, u64)) {
    if clear & MOUNT_ATTR_ATIME != 0 {
        attr.set &= !MOUNT_ATTR_ATIME;
    }
    attr.set = (attr.set & !clear) | set;
    attr.clear = (attr.clear & !set) | clear;
}

/// Propagation flags from a `rootfsPropagation` value.
pub(crate) fn propagation(value: &str) -> Option<u64> {
    match classify(value) {
        Opt::Propagation(p) => Some(p),
        _ => None,
    }
}

/// One OCI mount to init ops. `index` names the mount in errors.
pub(crate) fn translate(
    index: usize,
    mount: &oci_spec::runtime::Mount,
    bundle: &Path,
    cgroups: &CgroupContext<'_>,
) -> Result<Vec<MountOp>> {
    let field = format!("mounts[{index}]");
    let destination = mount.destination();
    if destination.as_os_str().is_empty() {
        return Err(Error::invalid(format!("{field}.destination"), "empty"));
    }
    if !destination.is_absolute() {
        return Err(Error::invalid(
            format!("{field}.destination"),
            format!("{destination:?} is not absolute"),
        ));
    }
    let mut flags = 0u64;
    let mut propagation = 0u64;
    let mut data = Vec::new();
    let mut recursive: Option<MountAttr> = None;
    let mut copy_up = false;
    for option in mount.options().iter().flatten() {
        match option.as_str() {
            IDMAP | RIDMAP => continue,
            TMPCOPYUP => {
                copy_up = true;
                continue;
            }
            _ => {}
        }
        if let Some(bits) = recursive_attr(option) {
            add_recursive(recursive.get_or_insert_default(), bits);
            continue;
        }
        match classify(option) {
            Opt::Set(bits) => flags |= bits,
            Opt::Clear(bits) => flags &= !bits,
            Opt::Propagation(bits) => propagation = bits,
            Opt::Data => data.push(option.as_str()),
        }
    }
    let fstype = mount.typ().as_deref().unwrap_or("");
    let is_bind = fstype == "bind" || flags & libc::MS_BIND != 0;
    if copy_up && (is_bind || fstype != "tmpfs") {
        return Err(Error::invalid(
            format!("{field}.options"),
            "tmpcopyup is for tmpfs mounts only",
        ));
    }
    if is_bind {
        flags |= libc::MS_BIND;
        let source = mount.source().as_ref().ok_or_else(|| {
            Error::invalid(format!("{field}.source"), "a bind mount needs a source")
        })?;
        let source = if source.is_absolute() {
            source.clone()
        } else {
            bundle.join(source)
        };
        return Ok(vec![MountOp {
            source: Some(RawPath::from(source)),
            destination: RawPath::from(destination.as_path()),
            fstype: None,
            flags,
            propagation,
            data: join_data(&data),
            recursive,
            detached: false,
            copy_up: false,
        }]);
    }
    if fstype.is_empty() {
        return Err(Error::invalid(
            format!("{field}.type"),
            "missing (and not a bind mount)",
        ));
    }
    if fstype == "cgroup" || fstype == "cgroup2" {
        if recursive.is_some() {
            return Err(Error::unsupported(
                format!("{field}.options"),
                "recursive (r*) options on a cgroup mount",
            ));
        }
        return Ok(cgroups.expand(destination, flags));
    }
    let source = mount
        .source()
        .as_ref()
        .map_or_else(|| fstype.into(), |s| RawPath::from(s.as_path()));
    Ok(vec![MountOp {
        source: Some(source),
        destination: RawPath::from(destination.as_path()),
        fstype: Some(fstype.to_owned()),
        flags,
        propagation,
        data: join_data(&data),
        recursive,
        detached: false,
        copy_up,
    }])
}

fn join_data(data: &[&str]) -> Option<String> {
    (!data.is_empty()).then(|| data.join(","))
}

/// What the `cgroup` mount needs to know about the host.
pub(crate) struct CgroupContext<'a> {
    /// The host's cgroup hierarchies.
    pub layout: &'a Layout,
    /// Whether the container has its own cgroup namespace: then each
    /// hierarchy is mounted afresh and shows the namespace's root;
    /// otherwise the runtime's own cgroup directory is bound read-only.
    pub cgroupns: bool,
}

impl CgroupContext<'_> {
    /// A `cgroup` mount at `dest`: on a pure v2 host one cgroup2 mount; on
    /// v1 (and hybrid) a tmpfs holding one mount per hierarchy, made
    /// read-only at the end when the flags ask for it.
    fn expand(&self, dest: &Path, flags: u64) -> Vec<MountOp> {
        let ro = libc::MS_RDONLY;
        let fs_flags = flags & !(ro | libc::MS_BIND | MS_REC);
        if let Some(unified) = self.layout.unified_only() {
            return vec![self.hierarchy_op(unified, dest.to_path_buf(), flags)];
        }
        let mut ops = vec![MountOp {
            source: Some("tmpfs".into()),
            destination: RawPath::from(dest),
            fstype: Some("tmpfs".into()),
            flags: fs_flags,
            propagation: 0,
            data: Some("mode=755".into()),
            recursive: None,
            detached: false,
            copy_up: false,
        }];
        // Read-only binds: bound plain, then made read-only (and nosuid,
        // nodev, noexec as asked) all at once by one recursive
        // `mount_setattr` on the tmpfs at the end, instead of a remount
        // per hierarchy: 11 calls fewer with runc's default config.
        let bind_once = flags & ro != 0 && !self.cgroupns;
        let hierarchy_flags = if bind_once { 0 } else { flags };
        for h in self.layout.hierarchies() {
            ops.push(self.hierarchy_op(h, dest.join(&h.name), hierarchy_flags));
        }
        if flags & ro != 0 {
            let recursive = bind_once.then(|| MountAttr {
                set: mount_attrs_of(flags | ro),
                clear: 0,
            });
            ops.push(MountOp {
                source: Some("tmpfs".into()),
                destination: RawPath::from(dest),
                fstype: Some("tmpfs".into()),
                flags: fs_flags | ro | libc::MS_REMOUNT,
                propagation: 0,
                data: None,
                recursive,
                detached: false,
                copy_up: false,
            });
        }
        ops
    }

    fn hierarchy_op(&self, h: &Hierarchy, dest: PathBuf, flags: u64) -> MountOp {
        if self.cgroupns {
            let (fstype, data) = if h.v2 {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(h.options.clone()))
            };
            return MountOp {
                source: Some(fstype.into()),
                destination: RawPath::from(dest),
                fstype: Some(fstype.into()),
                flags,
                propagation: 0,
                data,
                recursive: None,
                detached: false,
                copy_up: false,
            };
        }
        MountOp {
            source: Some(RawPath::from(h.own_dir())),
            destination: RawPath::from(dest),
            fstype: None,
            flags: flags | libc::MS_BIND | MS_REC,
            propagation: 0,
            data: None,
            recursive: None,
            detached: false,
            copy_up: false,
        }
    }
}

/// Points the binds of a `cgroup` mount (no cgroup namespace) at the
/// container's own cgroup, once it is made: the plan binds the runtime's
/// own directory in each hierarchy, but the container must see its own
/// limits at `/sys/fs/cgroup/<controller>`, as runc shows them (podman on
/// v1 reads `memory.limit_in_bytes` there). Hierarchies where the
/// container has no directory (named ones, a hybrid host's `unified`) keep
/// the runtime's.
pub(crate) fn bind_container_cgroup(
    ops: &mut [MountOp],
    layout: &Layout,
    paths: &crate::cgroups::CgroupPaths,
) {
    for h in layout.hierarchies() {
        let own = RawPath::from(h.own_dir().as_path());
        let Some(dir) = paths
            .dirs
            .iter()
            .find(|d| d.path.starts_with(&h.mount_point))
        else {
            continue;
        };
        for op in ops.iter_mut() {
            if op.fstype.is_none() && op.source.as_ref() == Some(&own) {
                op.source = Some(RawPath::from(dir.path.as_path()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> oci_spec::runtime::Mount {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    fn v1_layout() -> Layout {
        Layout::parse(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
            "4:memory:/a/b\n1:cpu:/\n0::/\n",
        )
    }

    fn translate_one(
        m: &oci_spec::runtime::Mount,
        layout: &Layout,
        ns: bool,
    ) -> Result<Vec<MountOp>> {
        let ctx = CgroupContext {
            layout,
            cgroupns: ns,
        };
        translate(0, m, Path::new("/bundle"), &ctx)
    }

    #[test]
    fn cgroup_binds_are_pointed_at_the_containers_own_cgroup() {
        use crate::cgroups::{CgroupDir, CgroupPaths};
        let layout = v1_layout();
        let m = mount("/sys/fs/cgroup", "cgroup", "cgroup", &["ro"]);
        let mut ops = translate_one(&m, &layout, false).unwrap();
        let dir = |p: &str| CgroupDir {
            controllers: Vec::new(),
            path: p.into(),
            owned: true,
        };
        let paths = CgroupPaths {
            v2: false,
            dirs: vec![
                dir("/sys/fs/cgroup/cpu/ctr"),
                dir("/sys/fs/cgroup/memory/a/b/ctr"),
            ],
        };
        bind_container_cgroup(&mut ops, &layout, &paths);
        let sources: Vec<_> = ops
            .iter()
            .filter(|o| o.fstype.is_none())
            .map(|o| o.source.clone().unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                RawPath::from("/sys/fs/cgroup/cpu/ctr"),
                RawPath::from("/sys/fs/cgroup/memory/a/b/ctr"),
                // No container dir in the unified hierarchy: the runtime's.
                RawPath::from("/sys/fs/cgroup/unified/"),
            ]
        );
    }

    #[test]
    fn tmpfs_options_split_into_flags_and_data() {
        let m = mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        );
        let ops = translate_one(&m, &v1_layout(), false).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(ops[0].data.as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(ops[0].fstype.as_deref(), Some("tmpfs"));
    }

    #[test]
    fn rbind_relative_source_is_resolved_against_the_bundle() {
        let m = mount("/data", "bind", "data", &["rbind", "ro", "rprivate"]);
        let op = &translate_one(&m, &v1_layout(), false).unwrap()[0];
        assert_eq!(
            op.source.as_ref().unwrap().as_path(),
            Path::new("/bundle/data")
        );
        assert_eq!(op.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(op.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(op.fstype, None);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let m = mount("/x", "tmpfs", "tmpfs", &["ro", "rw"]);
        assert_eq!(translate_one(&m, &v1_layout(), false).unwrap()[0].flags, 0);
    }

    #[test]
    fn relative_destination_is_an_error_naming_the_field() {
        let m = mount("x", "tmpfs", "tmpfs", &[]);
        let err = translate_one(&m, &v1_layout(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mounts[0].destination"), "{err}");
    }

    #[test]
    fn tmpcopyup_marks_a_tmpfs_and_is_refused_elsewhere() {
        let m = mount("/x", "tmpfs", "tmpfs", &["tmpcopyup", "mode=700"]);
        let op = &translate_one(&m, &v1_layout(), false).unwrap()[0];
        assert!(op.copy_up);
        assert_eq!(op.data.as_deref(), Some("mode=700"));
        for m in [
            mount("/x", "bind", "/y", &["rbind", "tmpcopyup"]),
            mount("/x", "proc", "proc", &["tmpcopyup"]),
        ] {
            let err = translate_one(&m, &v1_layout(), false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("mounts[0].options"), "{err}");
        }
        // idmap options are no mount data.
        let m = mount("/x", "bind", "/y", &["rbind", "idmap"]);
        assert_eq!(
            translate_one(&m, &v1_layout(), false).unwrap()[0].data,
            None
        );
    }

    #[test]
    fn recursive_attributes_become_mount_setattr_bits_and_later_ones_win() {
        let m = mount(
            "/x",
            "bind",
            "/y",
            &["rbind", "rro", "rnosuid", "rsuid", "rnoatime", "rnoexec"],
        );
        let ops = translate_one(&m, &v1_layout(), false).unwrap();
        let attr = ops[0].recursive.expect("recursive attributes");
        assert_eq!(
            attr,
            MountAttr {
                set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME | MOUNT_ATTR_NOEXEC,
                clear: MOUNT_ATTR_NOSUID | MOUNT_ATTR_ATIME,
            }
        );
        let m = mount("/x", "tmpfs", "tmpfs", &["rnoatime", "rstrictatime"]);
        let attr = translate_one(&m, &v1_layout(), false).unwrap()[0]
            .recursive
            .unwrap();
        assert_eq!(
            (attr.set, attr.clear),
            (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME)
        );
        let m = mount("/x", "bind", "/y", &["rbind"]);
        assert_eq!(
            translate_one(&m, &v1_layout(), false).unwrap()[0].recursive,
            None
        );
    }

    #[test]
    fn cgroup_on_v1_without_cgroupns_binds_own_dirs_read_only() {
        let m = mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "ro"]);
        let ops = translate_one(&m, &v1_layout(), false).unwrap();
        let dests: Vec<_> = ops
            .iter()
            .map(|o| o.destination.as_path().to_owned())
            .collect();
        assert_eq!(
            dests,
            [
                "/sys/fs/cgroup",
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            ops[2].source.as_ref().unwrap().as_path(),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        assert_ne!(ops[2].flags & libc::MS_BIND, 0);
        assert_eq!(
            ops[2].flags & (libc::MS_RDONLY | libc::MS_NOSUID),
            0,
            "binds are plain: no remount each"
        );
        assert_eq!(
            ops[0].flags & libc::MS_RDONLY,
            0,
            "tmpfs is made ro only at the end"
        );
        assert_ne!(ops[4].flags & libc::MS_REMOUNT, 0);
        assert_eq!(
            ops[4].recursive,
            Some(MountAttr {
                set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                clear: 0
            }),
            "one recursive mount_setattr makes the tmpfs and every bind ro, nosuid"
        );
    }

    #[test]
    fn cgroup_with_cgroupns_mounts_each_hierarchy_afresh() {
        let m = mount("/sys/fs/cgroup", "cgroup", "cgroup", &["ro"]);
        let ops = translate_one(&m, &v1_layout(), true).unwrap();
        assert_eq!(ops[1].fstype.as_deref(), Some("cgroup"));
        assert_eq!(ops[1].data.as_deref(), Some("cpu"));
        assert_eq!(ops[3].fstype.as_deref(), Some("cgroup2"));
    }

    #[test]
    fn cgroup_on_pure_v2_is_one_cgroup2_mount() {
        let layout = Layout::parse(
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/x\n",
        );
        let m = mount("/sys/fs/cgroup", "cgroup", "cgroup", &["ro"]);
        let ops = translate_one(&m, &layout, false).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(
            ops[0].source.as_ref().unwrap().as_path(),
            Path::new("/sys/fs/cgroup/x")
        );
    }
}
