//! Recursive mount attributes (`rro`, `rnosuid`, ... applied with
//! `mount_setattr(AT_RECURSIVE)`), checked from inside the container on a
//! submount that an `rbind` brings along; idmapped binds (`idmap`,
//! `ridmap`, per-mount `uidMappings`/`gidMappings`), checked through the
//! owners the container sees and the owner of a file it creates; and
//! `tmpcopyup`. `docs/spec-coverage.md` maps the options to these tests.
//!
//! The idmapped sources are directories under `$TMPDIR` (ext4 here) and
//! tmpfs submounts (idmappable since Linux 6.3); the unsupported-source
//! case is a ramfs, which has no idmapping support.

use std::path::{Path, PathBuf};

use corral::Spec;
use corral::oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType as Ns, Mount,
    MountBuilder,
};
use corral_tests::cli::assert_no_mounts_under;
use corral_tests::*;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

/// Serialises this file's tests: they count this process's children.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

fn add_bind(spec: &mut Spec, dest: &str, source: &Path, options: &[&str]) -> usize {
    add_mount(spec, mount("bind", dest, source, options))
}

fn mount(typ: &str, dest: &str, source: &Path, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap()
}

fn add_mount(spec: &mut Spec, m: Mount) -> usize {
    let oci = spec.oci_mut();
    let mut all = oci.mounts().clone().unwrap_or_default();
    all.push(m);
    oci.set_mounts(Some(all));
    oci.mounts().as_ref().unwrap().len() - 1
}

async fn output(spec: Spec) -> String {
    let (status, out) = run_capture(&runtime(), spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    out
}

/// A private tmpfs the test mounts on the host under its temp dir; lazily
/// unmounted on drop, so nothing is left behind.
struct Submount(PathBuf);

impl Submount {
    fn new(at: PathBuf) -> Self {
        Self::of("tmpfs", at)
    }

    fn of(fstype: &str, at: PathBuf) -> Self {
        std::fs::create_dir_all(&at).unwrap();
        rustix::mount::mount(fstype, &at, fstype, MountFlags::empty(), None).unwrap();
        rustix::mount::mount_change(&at, MountPropagationFlags::PRIVATE).unwrap();
        Submount(at)
    }
}

impl Drop for Submount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, UnmountFlags::DETACH);
    }
}

/// The mount options (field 6) of the mountinfo line for `point`.
fn mount_options(mountinfo: &str, point: &str) -> Vec<String> {
    let line = mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("{point} not in {mountinfo}"));
    line.split(' ')
        .nth(5)
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn recursive_attributes_reach_a_submount_of_an_rbind() {
    require_root();
    let _serial = serial().await;
    let host = TempDir::new("rro");
    let sub = Submount::new(host.path().join("sub"));

    let options = [
        "rbind",
        "rro",
        "rnosuid",
        "rnodev",
        "rnoexec",
        "rnoatime",
        "rnosymfollow",
    ];
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/mountinfo"]);
    add_bind(&mut spec, "/data", host.path(), &options);
    let info = output(spec).await;
    for point in ["/data", "/data/sub"] {
        let opts = mount_options(&info, point);
        for want in ["ro", "nosuid", "nodev", "noexec", "noatime", "nosymfollow"] {
            assert!(
                opts.iter().any(|o| o == want),
                "{want} not on {point}: {opts:?}"
            );
        }
    }

    // The submount refuses a write with rro; with plain ro only the top is
    // read-only (a remount does not recurse), which is what rro adds.
    let mut spec = probe_spec(&["/probe", "mkdir", "/data/sub/x"]);
    add_bind(&mut spec, "/data", host.path(), &["rbind", "rro"]);
    assert_eq!(output(spec).await.trim(), libc::EROFS.to_string());
    assert!(!sub.0.join("x").exists());
    let mut spec = probe_spec(&["/probe", "mkdir", "/data/sub/y"]);
    add_bind(&mut spec, "/data", host.path(), &["rbind", "ro"]);
    assert_eq!(output(spec).await.trim(), "0");

    // And rrw undoes an earlier rro.
    let mut spec = probe_spec(&["/probe", "mkdir", "/data/sub/z"]);
    add_bind(&mut spec, "/data", host.path(), &["rbind", "rro", "rrw"]);
    assert_eq!(output(spec).await.trim(), "0");
    drop(sub);
    assert_no_mounts_under(host.path());
}

// ---------------------------------------------------------------------------
// idmapped binds

fn id_map(container: u32, host: u32, size: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(container)
        .host_id(host)
        .size(size)
        .build()
        .unwrap()
}

/// `probe_spec(args)` in a new user namespace mapping 0..65536 to
/// 100000..165536.
fn userns_spec(args: &[&str]) -> Spec {
    let mut spec = probe_spec(args);
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    let mut list = linux.namespaces().clone().unwrap_or_default();
    list.push(
        LinuxNamespaceBuilder::default()
            .typ(Ns::User)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(list));
    linux.set_uid_mappings(Some(vec![id_map(0, 100_000, 65536)]));
    linux.set_gid_mappings(Some(vec![id_map(0, 100_000, 65536)]));
    spec
}

fn touch(path: &Path, uid: u32, gid: u32) {
    std::fs::write(path, "x").unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// `probe tree DIR` in `spec`'s container, as `{path: {"uid", "gid", ...}}`.
async fn tree(spec: Spec) -> serde_json::Value {
    serde_json::from_str(&output(spec).await).unwrap()
}

/// `(uid, gid)` of `path` in a `tree` listing.
fn owner(tree: &serde_json::Value, path: &str) -> (i64, i64) {
    let e = &tree[path];
    let id = |k: &str| {
        e[k].as_i64()
            .unwrap_or_else(|| panic!("{path} not in {tree}"))
    };
    (id("uid"), id("gid"))
}

/// A host dir owned by 0 holding `low` (owned 7:8), `high` (100007:100008)
/// and `root` (0:0).
fn owned_tree(name: &str) -> TempDir {
    let host = TempDir::new(name);
    std::os::unix::fs::chown(host.path(), Some(0), Some(0)).unwrap();
    touch(&host.path().join("low"), 7, 8);
    touch(&host.path().join("high"), 100_007, 100_008);
    touch(&host.path().join("root"), 0, 0);
    host
}

/// Owner ids outside the container's user namespace show as this.
///
/// The tests mount at `/tmp`, which the shared rootfs has: the init of a
/// container with a user namespace cannot create a mount point in a
/// rootfs owned by the host's root.
const OVERFLOW: i64 = 65534;

#[tokio::test]
async fn idmap_maps_owners_through_the_containers_user_namespace() {
    require_root();
    let _serial = serial().await;
    let host = owned_tree("idmap");

    // Plain bind: the container sees host ids through its namespace.
    let mut spec = userns_spec(&["/probe", "tree", "/tmp"]);
    add_bind(&mut spec, "/tmp", host.path(), &["bind"]);
    let plain = tree(spec).await;
    assert_eq!(owner(&plain, "high"), (7, 8), "{plain}");
    assert_eq!(owner(&plain, "low"), (OVERFLOW, OVERFLOW), "{plain}");
    assert_eq!(owner(&plain, "root"), (OVERFLOW, OVERFLOW), "{plain}");

    // idmap: the ids on disk are the container's own.
    let mut spec = userns_spec(&["/probe", "tree", "/tmp"]);
    add_bind(&mut spec, "/tmp", host.path(), &["bind", "idmap"]);
    let mapped = tree(spec).await;
    assert_eq!(owner(&mapped, "low"), (7, 8), "{mapped}");
    assert_eq!(owner(&mapped, "root"), (0, 0), "{mapped}");
    assert_eq!(owner(&mapped, "high"), (OVERFLOW, OVERFLOW), "{mapped}");

    // What the container's root creates there is owned by 0 on disk, not
    // by the host uid 100000 it runs as.
    let mut spec = userns_spec(&["/probe", "write", "/tmp/new", "made inside"]);
    add_bind(&mut spec, "/tmp", host.path(), &["bind", "ro", "idmap"]);
    let (status, _) = run_capture(&runtime(), spec).await.unwrap();
    assert!(!status.success(), "ro still holds on an idmapped bind");
    let mut spec = userns_spec(&["/probe", "write", "/tmp/new", "made inside"]);
    add_bind(&mut spec, "/tmp", host.path(), &["bind", "idmap"]);
    output(spec).await;
    let made = std::fs::metadata(host.path().join("new")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((made.uid(), made.gid()), (0, 0));
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).unwrap(),
        "made inside"
    );
    assert_no_mounts_under(host.path());
}

#[tokio::test]
async fn ridmap_reaches_a_submount_that_idmap_leaves_alone() {
    require_root();
    let _serial = serial().await;
    let host = owned_tree("ridmap");
    let sub = Submount::new(host.path().join("sub"));
    touch(&sub.0.join("f"), 7, 8);

    let mut spec = userns_spec(&["/probe", "tree", "/tmp"]);
    add_bind(&mut spec, "/tmp", host.path(), &["rbind", "idmap"]);
    let top_only = tree(spec).await;
    assert_eq!(owner(&top_only, "low"), (7, 8), "{top_only}");
    assert_eq!(
        owner(&top_only, "sub/f"),
        (OVERFLOW, OVERFLOW),
        "{top_only}"
    );

    let mut spec = userns_spec(&["/probe", "tree", "/tmp"]);
    add_bind(&mut spec, "/tmp", host.path(), &["rbind", "ridmap"]);
    let all = tree(spec).await;
    assert_eq!(owner(&all, "low"), (7, 8), "{all}");
    assert_eq!(owner(&all, "sub/f"), (7, 8), "{all}");
    drop(sub);
    assert_no_mounts_under(host.path());
}

/// The optional fields (7th on, up to `-`) of the mountinfo line for
/// `point`: `shared:N`, `master:N`...
fn propagation_fields(mountinfo: &str, point: &str) -> Vec<String> {
    let line = mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("{point} not in {mountinfo}"));
    line.split(' ')
        .skip(6)
        .take_while(|f| *f != "-")
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn an_idmapped_bind_of_a_shared_host_mount_is_a_slave_inside() {
    require_root();
    let _serial = serial().await;
    let host = TempDir::new("idmap-shared");
    let shared = Submount::new(host.path().join("shared"));
    rustix::mount::mount_change(&shared.0, MountPropagationFlags::SHARED).unwrap();
    for options in [&["bind"][..], &["bind", "idmap"]] {
        let mut spec = userns_spec(&["/probe", "read", "/proc/self/mountinfo"]);
        add_bind(&mut spec, "/tmp", &shared.0, options);
        let fields = propagation_fields(&output(spec).await, "/tmp");
        // Host mounts still arrive; nothing made inside goes back.
        assert!(
            fields.iter().any(|f| f.starts_with("master:"))
                && !fields.iter().any(|f| f.starts_with("shared:")),
            "{options:?}: {fields:?}"
        );
    }
    drop(shared);
    assert_no_mounts_under(host.path());
}

#[tokio::test]
async fn a_mount_with_its_own_mappings_uses_them_not_the_containers() {
    require_root();
    let _serial = serial().await;
    let host = owned_tree("ownmap");
    let children = child_count();
    let own = |spec: &mut Spec| {
        let mut m = mount("bind", "/tmp", host.path(), &["bind"]);
        // On disk 0..1000 is host 100100..101100: `low` (7) is 100107.
        m.set_uid_mappings(Some(vec![id_map(0, 100_100, 1000)]));
        m.set_gid_mappings(Some(vec![id_map(0, 100_200, 1000)]));
        add_mount(spec, m);
    };
    // In the container's namespace (0 is host 100000) that is 107.
    let mut spec = userns_spec(&["/probe", "tree", "/tmp"]);
    own(&mut spec);
    let inside = tree(spec).await;
    assert_eq!(owner(&inside, "low"), (107, 208), "{inside}");
    assert_eq!(owner(&inside, "root"), (100, 200), "{inside}");
    assert_eq!(owner(&inside, "high"), (OVERFLOW, OVERFLOW), "{inside}");
    // Without a user namespace the container sees the host ids.
    let mut spec = probe_spec(&["/probe", "tree", "/tmp"]);
    own(&mut spec);
    let host_view = tree(spec).await;
    assert_eq!(owner(&host_view, "low"), (100_107, 100_208), "{host_view}");
    // The holders of the mounts' user namespaces were reaped.
    assert_eq!(child_count(), children);
    assert_no_mounts_under(host.path());
}

#[tokio::test]
async fn bad_idmapped_mounts_are_refused_naming_the_field() {
    require_root();
    let _serial = serial().await;
    let host = owned_tree("idmap-bad");
    // idmap needs mappings: the mount's own or the container's namespace.
    for option in ["idmap", "ridmap"] {
        let mut spec = probe_spec(&["/probe"]);
        let index = add_bind(&mut spec, "/tmp", host.path(), &["rbind", option]);
        assert_refused(spec, &format!("mounts[{index}].options")).await;
    }
    // Only bind mounts.
    let mut spec = userns_spec(&["/probe"]);
    let index = add_mount(
        &mut spec,
        mount("tmpfs", "/t", Path::new("tmpfs"), &["ridmap"]),
    );
    assert_refused(spec, &format!("mounts[{index}].options")).await;
    // Both mappings or neither.
    let mut spec = probe_spec(&["/probe"]);
    let mut m = mount("bind", "/tmp", host.path(), &["bind"]);
    m.set_uid_mappings(Some(vec![id_map(0, 100_000, 10)]));
    let index = add_mount(&mut spec, m);
    assert_refused(spec, &format!("mounts[{index}].gidMappings")).await;
    // A source whose filesystem cannot be idmapped (ramfs): refused after
    // the clone, and the child, the detached tree and the state are gone.
    let ramfs = Submount::of("ramfs", host.path().join("ram"));
    let mut spec = userns_spec(&["/probe"]);
    let index = add_bind(&mut spec, "/tmp", &ramfs.0, &["bind", "idmap"]);
    assert_refused(spec, &format!("mounts[{index}].source")).await;
    drop(ramfs);
    assert_no_mounts_under(host.path());
}

// ---------------------------------------------------------------------------
// tmpcopyup

/// A private rootfs whose `/seed` holds `a` ("alpha", 0644, mtime 10^9),
/// `sub/b` ("beta"), `ln -> a`, `out -> /etc/passwd` and `secret` (0700,
/// owned 1000:1001).
fn seeded_rootfs() -> TempDir {
    let tmp = TempDir::new("copyup");
    let rootfs = tmp.path().join("rootfs");
    corral_testbins::build_rootfs(&rootfs).unwrap();
    let seed = rootfs.join("seed");
    std::fs::create_dir_all(seed.join("sub")).unwrap();
    std::fs::write(seed.join("a"), "alpha").unwrap();
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        seed.join("a"),
        &old,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    std::fs::write(seed.join("sub/b"), "beta").unwrap();
    std::os::unix::fs::symlink("a", seed.join("ln")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", seed.join("out")).unwrap();
    touch(&seed.join("secret"), 1000, 1001);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(seed.join("secret"), std::fs::Permissions::from_mode(0o700)).unwrap();
    tmp
}

fn copyup_spec(tmp: &TempDir, args: &[&str], options: &[&str]) -> Spec {
    let mut spec = Spec::builder()
        .rootfs(tmp.path().join("rootfs"))
        .readonly_root(true)
        .args(args.iter().copied())
        .namespaces(&[Ns::Pid, Ns::Mount, Ns::Ipc, Ns::Uts])
        .build()
        .unwrap();
    add_mount(
        &mut spec,
        mount("tmpfs", "/seed", Path::new("tmpfs"), options),
    );
    spec
}

#[tokio::test]
async fn tmpcopyup_fills_the_tmpfs_with_what_the_rootfs_had() {
    require_root();
    let _serial = serial().await;
    let tmp = seeded_rootfs();
    let seed = tmp.path().join("rootfs/seed");

    let spec = copyup_spec(
        &tmp,
        &["/probe", "tree", "/seed"],
        &["tmpcopyup", "size=1m"],
    );
    let got = tree(spec).await;
    let field = |p: &str, k: &str| got[p][k].clone();
    assert_eq!(field("a", "text"), "alpha", "{got}");
    assert_eq!(field("a", "mode"), 0o644, "{got}");
    assert_eq!(field("a", "mtime"), 1_000_000_000, "{got}");
    assert_eq!(field("sub", "type"), "d", "{got}");
    assert_eq!(field("sub/b", "text"), "beta", "{got}");
    assert_eq!(field("ln", "type"), "l", "{got}");
    assert_eq!(field("ln", "link"), "a", "{got}");
    assert_eq!(field("out", "link"), "/etc/passwd", "{got}");
    assert_eq!(field("secret", "mode"), 0o700, "{got}");
    assert_eq!(owner(&got, "secret"), (1000, 1001), "{got}");
    assert_eq!(got.as_object().unwrap().len(), 6, "{got}");

    // Writes go to the tmpfs, never to the rootfs.
    let spec = copyup_spec(
        &tmp,
        &["/probe", "write", "/seed/a", "changed"],
        &["tmpcopyup"],
    );
    output(spec).await;
    let spec = copyup_spec(&tmp, &["/probe", "write", "/seed/new", "x"], &["tmpcopyup"]);
    output(spec).await;
    assert_eq!(std::fs::read_to_string(seed.join("a")).unwrap(), "alpha");
    assert!(!seed.join("new").exists());

    // ro comes after the copy; and without tmpcopyup the tmpfs is empty.
    let spec = copyup_spec(&tmp, &["/probe", "mkdir", "/seed/x"], &["tmpcopyup", "ro"]);
    assert_eq!(output(spec).await.trim(), libc::EROFS.to_string());
    let spec = copyup_spec(&tmp, &["/probe", "tree", "/seed"], &["size=1m"]);
    assert_eq!(tree(spec).await, serde_json::json!({}));
    assert_no_mounts_under(tmp.path());
}

#[tokio::test]
async fn tmpcopyup_on_a_bind_is_refused_naming_the_options() {
    require_root();
    let _serial = serial().await;
    let host = TempDir::new("copyup-bad");
    let mut spec = probe_spec(&["/probe"]);
    let index = add_bind(&mut spec, "/data", host.path(), &["rbind", "tmpcopyup"]);
    assert_refused(spec, &format!("mounts[{index}].options")).await;
    assert_no_mounts_under(host.path());
}
