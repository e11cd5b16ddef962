//! Config fields the spine implemented, each checked from inside the
//! container with `probe`, plus a bad-input test per field (a clear error
//! naming the field, no child and no state left). `docs/spec-coverage.md`
//! maps each field to its tests here.

use std::collections::HashMap;
use std::path::Path;

use corral::Spec;
use corral::oci_spec::runtime::{
    LinuxDeviceBuilder, LinuxDeviceType, LinuxNamespaceType as Ns, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType,
};
use corral_tests::*;

/// Serialises this file's tests: they count this process's children.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

fn linux(spec: &mut Spec) -> &mut corral::oci_spec::runtime::Linux {
    spec.oci_mut().linux_mut().as_mut().unwrap()
}

fn process(spec: &mut Spec) -> &mut corral::oci_spec::runtime::Process {
    spec.oci_mut().process_mut().as_mut().unwrap()
}

async fn output(spec: Spec) -> String {
    let (status, out) = run_capture(&runtime(), spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    out
}

async fn info(spec: Spec) -> serde_json::Value {
    probe_info(&runtime(), spec).await.unwrap()
}

// ---------------------------------------------------------------------------
// linux.devices

#[tokio::test]
async fn linux_devices_are_created_with_type_numbers_mode_and_owner() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "stat", "/dev/corral-null"]);
    let dev = LinuxDeviceBuilder::default()
        .path("/dev/corral-null")
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .file_mode(0o620u32)
        .uid(1000u32)
        .gid(1001u32)
        .build()
        .unwrap();
    linux(&mut spec).set_devices(Some(vec![dev]));
    let st: serde_json::Value = serde_json::from_str(&output(spec).await).unwrap();
    assert_eq!(st["type"], "c", "{st}");
    assert_eq!(
        (st["major"].as_i64(), st["minor"].as_i64()),
        (Some(1), Some(3))
    );
    assert_eq!(st["mode"], 0o620, "{st}");
    assert_eq!(
        (st["uid"].as_i64(), st["gid"].as_i64()),
        (Some(1000), Some(1001))
    );
}

/// In an image's own `/dev` (no `/dev` mount), a file in the way of a
/// device is replaced by the node, and a node that is already the one
/// asked for (type and numbers) is kept as it is.
#[tokio::test]
async fn devices_replace_what_is_in_the_way_and_keep_matching_nodes() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("devs");
    let rootfs = tmp.path().join("rootfs");
    corral_testbins::build_rootfs(&rootfs).unwrap();
    let dev = rootfs.join("dev");
    std::fs::write(dev.join("corral-a"), b"in the way").unwrap();
    let kept = dev.join("corral-b");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &kept,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
    let node = |path: &str, mode: u32| {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(mode)
            .build()
            .unwrap()
    };
    let mut spec = corral::Spec::builder()
        .rootfs(&rootfs)
        .args(["/bin/true"])
        .build()
        .unwrap();
    linux(&mut spec).set_devices(Some(vec![
        node("/dev/corral-a", 0o666),
        node("/dev/corral-b", 0o666),
    ]));
    // Only /proc: the nodes go into the image's own /dev.
    let mounts = spec.oci().mounts().clone().unwrap_or_default();
    let proc: Vec<_> = mounts
        .into_iter()
        .filter(|m| m.destination() == Path::new("/proc"))
        .collect();
    assert_eq!(proc.len(), 1, "the default spec mounts /proc");
    spec.oci_mut().set_mounts(Some(proc));
    output(spec).await;
    let a = std::fs::symlink_metadata(dev.join("corral-a")).unwrap();
    assert!(a.file_type().is_char_device(), "{a:?}");
    assert_eq!(
        (a.rdev(), a.mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    let b = std::fs::symlink_metadata(&kept).unwrap();
    assert!(b.file_type().is_char_device(), "{b:?}");
    assert_eq!(
        b.mode() & 0o7777,
        0o600,
        "a matching node is left as it was"
    );
}

#[tokio::test]
async fn linux_devices_outside_dev_or_of_type_a_are_refused() {
    require_root();
    let _serial = serial().await;
    let node = |path: &str, typ| {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(1)
            .minor(3)
            .build()
            .unwrap()
    };
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_devices(Some(vec![node("/etc/evil", LinuxDeviceType::C)]));
    assert_refused(spec, "linux.devices[0].path").await;
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_devices(Some(vec![node("/dev/x", LinuxDeviceType::A)]));
    assert_refused(spec, "linux.devices[0].type").await;
}

// ---------------------------------------------------------------------------
// linux.sysctl

#[tokio::test]
async fn sysctls_are_written_in_the_containers_own_namespaces() {
    require_root();
    let _serial = serial().await;
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want_forward = if host_forward.trim() == "1" { "0" } else { "1" };
    let sysctl = |spec: &mut Spec| {
        let mut map = HashMap::new();
        map.insert("kernel.shmmax".to_owned(), "65536".to_owned());
        map.insert("net.ipv4.ip_forward".to_owned(), want_forward.to_owned());
        linux(spec).set_sysctl(Some(map));
    };
    let mut spec = probe_spec(&["/probe", "read", "/proc/sys/kernel/shmmax"]);
    sysctl(&mut spec);
    // probe_spec has no network namespace: add one for net.*.
    let mut list = linux(&mut spec).namespaces().clone().unwrap();
    list.push(
        corral::oci_spec::runtime::LinuxNamespaceBuilder::default()
            .typ(Ns::Network)
            .build()
            .unwrap(),
    );
    linux(&mut spec).set_namespaces(Some(list.clone()));
    assert_eq!(output(spec).await.trim(), "65536");
    let mut spec = probe_spec(&["/probe", "read", "/proc/sys/net/ipv4/ip_forward"]);
    sysctl(&mut spec);
    linux(&mut spec).set_namespaces(Some(list));
    assert_eq!(output(spec).await.trim(), want_forward);
    // The host's values did not change.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
}

#[tokio::test]
async fn host_wide_sysctls_and_net_sysctls_without_a_netns_are_refused() {
    require_root();
    let _serial = serial().await;
    for key in ["kernel.panic", "net.ipv4.ip_forward"] {
        let mut spec = probe_spec(&["/probe"]);
        let mut map = HashMap::new();
        map.insert(key.to_owned(), "1".to_owned());
        linux(&mut spec).set_sysctl(Some(map));
        assert_refused(spec, &format!("linux.sysctl[{key:?}]")).await;
    }
}

// ---------------------------------------------------------------------------
// annotations

#[tokio::test]
async fn annotations_are_stored_in_state() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("annotations");
    let rt = corral::Runtime::builder()
        .state_dir(tmp.path().join("state"))
        .build()
        .unwrap();
    let mut spec = probe_spec(&["/probe", "exit", "0"]);
    let mut map = HashMap::new();
    map.insert("org.example.key".to_owned(), "value with spaces".to_owned());
    spec.oci_mut().set_annotations(Some(map));
    let id = unique_id("annot");
    let c = rt.create(&id, spec).await.unwrap();
    let (stored, status) = rt.state(&id).unwrap();
    assert_eq!(status, corral::Status::Created);
    assert_eq!(
        stored
            .annotations
            .get("org.example.key")
            .map(String::as_str),
        Some("value with spaces")
    );
    // state.json on disk, as `corral state` prints it.
    let text =
        std::fs::read_to_string(tmp.path().join("state").join(&id).join("state.json")).unwrap();
    assert!(text.contains("org.example.key"), "{text}");
    c.force_delete().await.unwrap();
}

// ---------------------------------------------------------------------------
// process.user: umask, additionalGids; process.cwd

#[tokio::test]
async fn user_ids_umask_and_additional_gids_are_applied() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "info"]);
    let user = process(&mut spec).user_mut();
    user.set_uid(1000);
    user.set_gid(1001);
    user.set_additional_gids(Some(vec![10, 20]));
    user.set_umask(Some(0o027));
    let info = info(spec).await;
    assert_eq!(
        (info["uid"].as_i64(), info["gid"].as_i64()),
        (Some(1000), Some(1001))
    );
    assert_eq!(info["groups"], serde_json::json!([10, 20]), "{info}");
    assert_eq!(info["umask"], "0027", "{info}");
}

#[tokio::test]
async fn a_umask_above_0777_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    process(&mut spec).user_mut().set_umask(Some(0o10000));
    assert_refused(spec, "process.user.umask").await;
}

#[tokio::test]
async fn a_missing_cwd_is_created_and_is_the_processs_cwd() {
    require_root();
    let _serial = serial().await;
    // /tmp is a fresh tmpfs, so the shared rootfs is not written.
    let mut spec = probe_spec(&["/probe", "info"]);
    add_tmpfs(&mut spec, "/tmp", &[]);
    process(&mut spec).set_cwd("/tmp/new/sub".into());
    let info = info(spec).await;
    assert_eq!(info["cwd"], "/tmp/new/sub", "{info}");
}

#[tokio::test]
async fn a_relative_cwd_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    process(&mut spec).set_cwd("tmp".into());
    assert_refused(spec, "process.cwd").await;
}

// ---------------------------------------------------------------------------
// process.oomScoreAdj, process.rlimits

#[tokio::test]
async fn oom_score_adj_and_rlimits_are_applied() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/oom_score_adj"]);
    process(&mut spec).set_oom_score_adj(Some(500));
    assert_eq!(output(spec).await.trim(), "500");
    let mut spec = probe_spec(&["/probe", "info"]);
    let limit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(123u64)
        .hard(456u64)
        .build()
        .unwrap();
    let core = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitCore)
        .soft(0u64)
        .hard(4096u64)
        .build()
        .unwrap();
    process(&mut spec).set_rlimits(Some(vec![limit, core]));
    let info = info(spec).await;
    assert_eq!(
        info["rlimits"]["Max open files"],
        serde_json::json!(["123", "456"])
    );
    assert_eq!(
        info["rlimits"]["Max core file size"],
        serde_json::json!(["0", "4096"])
    );
}

#[tokio::test]
async fn out_of_range_oom_score_adj_and_inverted_rlimits_are_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    process(&mut spec).set_oom_score_adj(Some(1001));
    assert_refused(spec, "process.oomScoreAdj").await;
    let mut spec = probe_spec(&["/probe"]);
    let bad = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(10u64)
        .hard(5u64)
        .build()
        .unwrap();
    process(&mut spec).set_rlimits(Some(vec![bad]));
    assert_refused(spec, "process.rlimits[0]").await;
}

// ---------------------------------------------------------------------------
// mounts options, rootfsPropagation

fn add_tmpfs(spec: &mut Spec, dest: &str, options: &[&str]) {
    add_mount(spec, dest, "tmpfs", "tmpfs", options);
}

fn add_mount(spec: &mut Spec, dest: &str, typ: &str, source: impl AsRef<Path>, options: &[&str]) {
    let m = MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.as_ref())
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .unwrap();
    let oci = spec.oci_mut();
    let mut all = oci.mounts().clone().unwrap_or_default();
    all.push(m);
    oci.set_mounts(Some(all));
}

/// The mountinfo line whose mount point is `point`.
fn mountinfo_line<'a>(mountinfo: &'a str, point: &str) -> &'a str {
    mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("{point} not in {mountinfo}"))
}

#[tokio::test]
async fn mount_options_are_applied_to_tmpfs_and_binds() {
    require_root();
    let _serial = serial().await;
    let host = TempDir::new("bind-ro");
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/mountinfo"]);
    add_tmpfs(
        &mut spec,
        "/tmp",
        &[
            "nosuid",
            "nodev",
            "noexec",
            "size=1m",
            "mode=1770",
            "noatime",
        ],
    );
    add_mount(
        &mut spec,
        "/root",
        "bind",
        host.path(),
        &["rbind", "ro", "nosuid"],
    );
    let info = output(spec).await;
    let tmp = mountinfo_line(&info, "/tmp");
    let opts = tmp.split(' ').nth(5).unwrap();
    for want in ["nosuid", "nodev", "noexec", "noatime"] {
        assert!(opts.split(',').any(|o| o == want), "{want} not in {tmp}");
    }
    let sup = tmp.rsplit(' ').next().unwrap();
    assert!(sup.contains("size=1024k"), "{tmp}");
    assert!(sup.contains("mode=1770"), "{tmp}");
    let root = mountinfo_line(&info, "/root");
    let opts = root.split(' ').nth(5).unwrap();
    assert!(opts.starts_with("ro,") && opts.contains("nosuid"), "{root}");
    // The ro bind refuses a write from inside.
    let mut spec = probe_spec(&["/probe", "mkdir", "/root/x"]);
    add_mount(&mut spec, "/root", "bind", host.path(), &["rbind", "ro"]);
    assert_eq!(output(spec).await.trim(), libc::EROFS.to_string());
    assert!(!host.path().join("x").exists());
}

#[tokio::test]
async fn a_relative_mount_destination_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    add_tmpfs(&mut spec, "tmp", &[]);
    let index = spec.oci().mounts().as_ref().unwrap().len() - 1;
    assert_refused(spec, &format!("mounts[{index}].destination")).await;
}

#[tokio::test]
async fn rootfs_propagation_is_applied_to_the_root() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/mountinfo"]);
    linux(&mut spec).set_rootfs_propagation(Some("shared".to_owned()));
    let shared = output(spec).await;
    let root = mountinfo_line(&shared, "/");
    assert!(root.contains(" shared:"), "{root}");
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/mountinfo"]);
    linux(&mut spec).set_rootfs_propagation(Some("private".to_owned()));
    let private = output(spec).await;
    let root = mountinfo_line(&private, "/");
    assert!(
        !root.contains("shared:") && !root.contains("master:"),
        "{root}"
    );
}

#[tokio::test]
async fn an_unknown_rootfs_propagation_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_rootfs_propagation(Some("sideways".to_owned()));
    assert_refused(spec, "linux.rootfsPropagation").await;
}

// ---------------------------------------------------------------------------
// root.readonly, maskedPaths, readonlyPaths, hostname, domainname

#[tokio::test]
async fn readonly_root_masked_and_readonly_paths_hold_inside() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "info"]);
    linux(&mut spec).set_masked_paths(Some(vec!["/etc/passwd".into(), "/bin".into()]));
    add_tmpfs(&mut spec, "/tmp", &[]);
    linux(&mut spec).set_readonly_paths(Some(vec!["/tmp".into()]));
    let info = info(spec).await;
    assert_eq!(info["root_readonly"], "rofs", "{info}");
    // Masked: a file reads empty, a dir is an empty read-only tmpfs.
    let spec_read = |args: &[&str]| {
        let mut spec = probe_spec(args);
        linux(&mut spec).set_masked_paths(Some(vec!["/etc/passwd".into(), "/root".into()]));
        add_tmpfs(&mut spec, "/tmp", &[]);
        linux(&mut spec).set_readonly_paths(Some(vec!["/tmp".into()]));
        spec
    };
    assert_eq!(
        output(spec_read(&["/probe", "read", "/etc/passwd"])).await,
        ""
    );
    assert_eq!(
        output(spec_read(&["/probe", "mkdir", "/root/x"]))
            .await
            .trim(),
        libc::EROFS.to_string()
    );
    assert_eq!(
        output(spec_read(&["/probe", "mkdir", "/tmp/x"]))
            .await
            .trim(),
        libc::EROFS.to_string()
    );
}

#[tokio::test]
async fn relative_masked_or_readonly_paths_are_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_masked_paths(Some(vec!["/ok".into(), "etc".into()]));
    assert_refused(spec, "linux.maskedPaths[1]").await;
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_readonly_paths(Some(vec!["proc".into()]));
    assert_refused(spec, "linux.readonlyPaths[0]").await;
}

#[tokio::test]
async fn hostname_and_domainname_are_set_in_the_uts_namespace() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "info"]);
    spec.oci_mut().set_hostname(Some("corral-host".into()));
    spec.oci_mut().set_domainname(Some("corral.example".into()));
    let info = info(spec).await;
    assert_eq!(info["hostname"], "corral-host");
    assert_eq!(info["domainname"], "corral.example");
}

#[tokio::test]
async fn a_domainname_without_a_uts_namespace_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    spec.oci_mut().set_domainname(Some("corral.example".into()));
    let mut list = linux(&mut spec).namespaces().clone().unwrap();
    list.retain(|n| n.typ() != Ns::Uts);
    linux(&mut spec).set_namespaces(Some(list));
    assert_refused(spec, "hostname").await;
}

// ---------------------------------------------------------------------------
// linux.personality

#[tokio::test]
async fn personality_linux32_is_set_for_the_process() {
    require_root();
    let _serial = serial().await;
    use corral::oci_spec::runtime::{LinuxPersonalityBuilder, LinuxPersonalityDomain};
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/personality"]);
    let p = LinuxPersonalityBuilder::default()
        .domain(LinuxPersonalityDomain::PerLinux32)
        .build()
        .unwrap();
    linux(&mut spec).set_personality(Some(p));
    assert_eq!(output(spec).await.trim(), "00000008");
    let (_, plain) = run_capture(
        &runtime(),
        probe_spec(&["/probe", "read", "/proc/self/personality"]),
    )
    .await
    .unwrap();
    assert_eq!(plain.trim(), "00000000");
}

#[tokio::test]
async fn personality_flags_are_refused() {
    require_root();
    let _serial = serial().await;
    use corral::oci_spec::runtime::{LinuxPersonalityBuilder, LinuxPersonalityDomain};
    let mut spec = probe_spec(&["/probe"]);
    let p = LinuxPersonalityBuilder::default()
        .domain(LinuxPersonalityDomain::PerLinux)
        .flags(vec!["ADDR_NO_RANDOMIZE".to_owned()])
        .build()
        .unwrap();
    linux(&mut spec).set_personality(Some(p));
    assert_refused(spec, "linux.personality.flags").await;
}

// ---------------------------------------------------------------------------
// process.apparmorProfile, process.selinuxLabel, linux.mountLabel: this host
// has neither AppArmor nor SELinux; runc 1.1 fails on each (see
// docs/spec-coverage.md), and so does corral, at create.

#[tokio::test]
async fn lsm_labels_and_profiles_are_refused_as_runc_does_without_the_lsm() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    process(&mut spec).set_apparmor_profile(Some("corral-test".into()));
    assert_refused(spec, "process.apparmorProfile").await;
    let mut spec = probe_spec(&["/probe"]);
    process(&mut spec).set_selinux_label(Some("system_u:system_r:container_t:s0".into()));
    assert_refused(spec, "process.selinuxLabel").await;
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_mount_label(Some("system_u:object_r:container_file_t:s0".into()));
    assert_refused(spec, "linux.mountLabel").await;
}
