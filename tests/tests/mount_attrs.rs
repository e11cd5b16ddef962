//! Recursive mount attributes (`rro`, `rnosuid`, ... applied with
//! `mount_setattr(AT_RECURSIVE)`), checked from inside the container on a
//! submount that an `rbind` brings along; and the refusal of idmapped
//! mounts. `docs/spec-coverage.md` maps the options to these tests.

use std::path::{Path, PathBuf};

use corral::Spec;
use corral::oci_spec::runtime::MountBuilder;
use corral_tests::cli::assert_no_mounts_under;
use corral_tests::*;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

/// Serialises this file's tests: they count this process's children.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

fn add_bind(spec: &mut Spec, dest: &str, source: &Path, options: &[&str]) -> usize {
    let m = MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap();
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
        std::fs::create_dir_all(&at).unwrap();
        rustix::mount::mount("tmpfs", &at, "tmpfs", MountFlags::empty(), None).unwrap();
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

#[tokio::test]
async fn idmapped_mounts_are_refused_naming_the_options() {
    require_root();
    let _serial = serial().await;
    let host = TempDir::new("idmap");
    for option in ["idmap", "ridmap"] {
        let mut spec = probe_spec(&["/probe"]);
        let index = add_bind(&mut spec, "/data", host.path(), &["rbind", option]);
        assert_refused(spec, &format!("mounts[{index}].options")).await;
    }
    assert_no_mounts_under(host.path());
}
