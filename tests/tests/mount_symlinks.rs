//! Mount destinations that are symlinks inside the rootfs resolve inside
//! the rootfs (`openat2(RESOLVE_IN_ROOT)`), never on the host
//! (CVE-2021-30465 class): a symlink to `/` and one to `../../..`, under
//! a bind and a tmpfs destination, in the middle of the path and as its
//! last component. Each test checks the mount from inside the container
//! and that nothing was created on the host outside the rootfs.

use std::path::Path;

use corral::oci_spec::runtime::{LinuxNamespaceType as Ns, Mount, MountBuilder};
use corral_tests::*;

/// A private rootfs in `tmp/rootfs/` whose `/up` links to `../../..`, `/abs`
/// to `/`, and `/last` (a last component) to `../../../<last>`; the host
/// dir `tmp/src` holds `hello`.
struct Fixture {
    tmp: TempDir,
    name: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = TempDir::new("mntlink");
        let rootfs = tmp.path().join("rootfs");
        corral_testbins::build_rootfs(&rootfs).unwrap();
        // A unique name nothing on the host has: if a mount or a mkdir
        // followed a link on the host, it would appear as `/<name>` or next
        // to the rootfs.
        let name = unique_id("escape");
        std::os::unix::fs::symlink("../../..", rootfs.join("up")).unwrap();
        std::os::unix::fs::symlink("/", rootfs.join("abs")).unwrap();
        std::os::unix::fs::symlink(format!("../../../{name}-last"), rootfs.join("last")).unwrap();
        std::fs::create_dir(tmp.path().join("src")).unwrap();
        std::fs::write(tmp.path().join("src/hello"), "hello").unwrap();
        Fixture { tmp, name }
    }

    fn rootfs(&self) -> std::path::PathBuf {
        self.tmp.path().join("rootfs")
    }

    fn spec(&self, mounts: Vec<Mount>, args: &[&str]) -> corral::Spec {
        let mut spec = corral::Spec::builder()
            .rootfs(self.rootfs())
            .args(args.iter().copied())
            .namespaces(&[Ns::Pid, Ns::Mount, Ns::Ipc, Ns::Uts])
            .build()
            .unwrap();
        let mut all = spec.oci().mounts().clone().unwrap_or_default();
        all.extend(mounts);
        spec.oci_mut().set_mounts(Some(all));
        spec
    }

    fn bind(&self, dest: &str) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ("bind")
            .source(self.tmp.path().join("src"))
            .options(vec!["rbind".to_owned(), "ro".to_owned()])
            .build()
            .unwrap()
    }

    fn tmpfs(&self, dest: &str) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec!["size=64k".to_owned()])
            .build()
            .unwrap()
    }

    /// Nothing named after the test appeared outside the rootfs: not at
    /// `/`, not at any ancestor of the rootfs, and the test dir holds only
    /// `rootfs` and `src`.
    fn assert_nothing_outside(&self) {
        let mut dir = self.rootfs();
        while let Some(parent) = dir.parent() {
            for suffix in ["", "-last", "-tmpfs"] {
                let p = parent.join(format!("{}{suffix}", self.name));
                assert!(!p.exists(), "{p:?} was created outside the rootfs");
            }
            dir = parent.to_path_buf();
        }
        let mut marker: Vec<_> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        marker.sort();
        assert_eq!(marker, ["rootfs", "src"], "the marker dir changed");
        assert!(
            host_mounts_under(Path::new("/"))
                .iter()
                .all(|m| !m.contains(&self.name)),
            "a mount leaked to the host"
        );
    }
}

async fn run_ok(spec: corral::Spec) -> String {
    let rt = runtime();
    let (status, out) = run_capture(&rt, spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    out
}

#[tokio::test]
async fn bind_onto_a_symlink_to_root_lands_inside_the_rootfs() {
    require_root();
    let f = Fixture::new();
    let dest = format!("/abs/{}", f.name);
    let inside = format!("/{}/hello", f.name);
    let out = run_ok(f.spec(vec![f.bind(&dest)], &["/probe", "read", &inside])).await;
    assert_eq!(out, "hello");
    // The mount point was made inside the rootfs.
    assert!(f.rootfs().join(&f.name).is_dir());
    f.assert_nothing_outside();
}

#[tokio::test]
async fn bind_onto_a_symlink_to_dotdot_lands_inside_the_rootfs() {
    require_root();
    let f = Fixture::new();
    let dest = format!("/up/{}", f.name);
    let inside = format!("/{}/hello", f.name);
    let out = run_ok(f.spec(vec![f.bind(&dest)], &["/probe", "read", &inside])).await;
    assert_eq!(out, "hello");
    assert!(f.rootfs().join(&f.name).is_dir());
    f.assert_nothing_outside();
}

#[tokio::test]
async fn tmpfs_onto_symlinks_to_root_and_dotdot_lands_inside_the_rootfs() {
    require_root();
    let f = Fixture::new();
    let a = format!("/abs/{}-tmpfs", f.name);
    let b = format!("/up/up/{}", f.name);
    let mounts = vec![f.tmpfs(&a), f.tmpfs(&b)];
    let out = run_ok(f.spec(mounts, &["/probe", "mounts"])).await;
    let mounts: Vec<String> = serde_json::from_str(&out).unwrap();
    assert!(mounts.contains(&format!("/{}-tmpfs", f.name)), "{mounts:?}");
    assert!(mounts.contains(&format!("/{}", f.name)), "{mounts:?}");
    f.assert_nothing_outside();
}

#[tokio::test]
async fn a_last_component_symlink_pointing_out_is_followed_inside_the_rootfs() {
    require_root();
    let f = Fixture::new();
    let inside = format!("/{}-last/hello", f.name);
    let out = run_ok(f.spec(vec![f.bind("/last")], &["/probe", "read", &inside])).await;
    assert_eq!(out, "hello");
    assert!(f.rootfs().join(format!("{}-last", f.name)).is_dir());
    f.assert_nothing_outside();
}
