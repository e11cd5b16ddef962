//! The v1 and v2 plans (pure), and applying them to a fake cgroup tree in
//! a temp dir: no root, no real cgroup.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::write::Write;
use super::*;

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn files(w: &[Write]) -> Vec<(&str, &str, &str)> {
    w.iter()
        .map(|w| (w.controller, w.file.as_str(), w.value.as_str()))
        .collect()
}

fn field_of(e: Error) -> String {
    match e {
        Error::InvalidSpec { field, .. } | Error::Unsupported { field, .. } => field,
        other => panic!("{other}"),
    }
}

const FULL: fn() -> serde_json::Value = || {
    json!({
        "memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 32},
        "blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 20}]
        },
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
    })
};

#[test]
fn v1_plan_writes_each_controller_file_in_order() {
    let w = v1::plan(&res(FULL())).unwrap();
    assert_eq!(
        files(&w),
        [
            ("memory", "memory.limit_in_bytes", "1048576"),
            ("memory", "memory.memsw.limit_in_bytes", "2097152"),
            ("memory", "memory.soft_limit_in_bytes", "524288"),
            ("cpu", "cpu.shares", "1024"),
            ("cpu", "cpu.cfs_period_us", "100000"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
            ("cpuset", "cpuset.cpus", "0-1"),
            ("cpuset", "cpuset.mems", "0"),
            ("pids", "pids.max", "32"),
            ("blkio", "blkio.weight", "500"),
            ("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
            ("blkio", "blkio.throttle.write_iops_device", "8:0 20"),
            ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ]
    );
    assert_eq!(
        w[9].fallback,
        Some(("blkio.bfq.weight".to_owned(), "500".to_owned()))
    );
}

#[test]
fn v2_plan_converts_to_v2_files() {
    let w = v2::plan(&res(FULL())).unwrap();
    assert_eq!(
        files(&w),
        [
            ("memory", "memory.max", "1048576"),
            ("memory", "memory.swap.max", "1048576"),
            ("memory", "memory.low", "524288"),
            ("cpu", "cpu.weight", "39"),
            ("cpu", "cpu.max", "50000 100000"),
            ("cpuset", "cpuset.cpus", "0-1"),
            ("cpuset", "cpuset.mems", "0"),
            ("pids", "pids.max", "32"),
            ("io", "io.bfq.weight", "default 500"),
            ("io", "io.max", "8:0 rbps=1000"),
            ("io", "io.max", "8:0 wiops=20"),
            ("hugetlb", "hugetlb.2MB.max", "4194304"),
        ]
    );
    assert_eq!(
        w[8].fallback,
        Some(("io.weight".to_owned(), "default 4950".to_owned()))
    );
}

#[test]
fn unlimited_values_are_max_on_v2_and_minus_one_on_v1() {
    let r = res(
        json!({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1}}),
    );
    assert_eq!(
        files(&v2::plan(&r).unwrap()),
        [
            ("memory", "memory.max", "max"),
            ("memory", "memory.swap.max", "max"),
            ("cpu", "cpu.max", "max 100000"),
            ("pids", "pids.max", "max"),
        ]
    );
    assert_eq!(
        files(&v1::plan(&r).unwrap())[..2],
        [
            ("memory", "memory.limit_in_bytes", "-1"),
            ("memory", "memory.memsw.limit_in_bytes", "-1"),
        ]
    );
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        (
            json!({"memory": {"limit": 0}}),
            "linux.resources.memory.limit",
        ),
        (
            json!({"memory": {"limit": -7}}),
            "linux.resources.memory.limit",
        ),
        (
            json!({"memory": {"limit": 100, "swap": 50}}),
            "linux.resources.memory.swap",
        ),
        (
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness",
        ),
        (json!({"cpu": {"period": 10}}), "linux.resources.cpu.period"),
        (json!({"cpu": {"quota": 5}}), "linux.resources.cpu.quota"),
        (json!({"cpu": {"cpus": "0-a"}}), "linux.resources.cpu.cpus"),
        (
            json!({"blockIO": {"weight": 5}}),
            "linux.resources.blockIO.weight",
        ),
        (
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
            "linux.resources.blockIO.throttleReadBpsDevice[0]",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}),
            "linux.resources.hugepageLimits[0]",
        ),
        (
            json!({"devices": [{"allow": true, "type": "p"}]}),
            "linux.resources.devices[0]",
        ),
        (
            json!({"devices": [{"allow": true, "access": "rwx"}]}),
            "linux.resources.devices[0]",
        ),
    ];
    for (v, field) in cases {
        assert_eq!(
            field_of(v1::plan(&res(v.clone())).unwrap_err()),
            field,
            "v1 {v}"
        );
        if !v.to_string().contains("devices") && !v.to_string().contains("swappiness") {
            assert_eq!(
                field_of(v2::plan(&res(v.clone())).unwrap_err()),
                field,
                "v2 {v}"
            );
        }
    }
}

#[test]
fn v1_only_fields_are_unsupported_on_v2_and_unified_on_v1() {
    for (v, field) in [
        (
            json!({"memory": {"swappiness": 10}}),
            "linux.resources.memory.swappiness",
        ),
        (
            json!({"memory": {"disableOOMKiller": true}}),
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            json!({"memory": {"kernelTCP": 100}}),
            "linux.resources.memory.kernelTCP",
        ),
        (
            json!({"cpu": {"realtimeRuntime": 100}}),
            "linux.resources.cpu.realtimeRuntime",
        ),
        (
            json!({"blockIO": {"leafWeight": 100}}),
            "linux.resources.blockIO.leafWeight",
        ),
        (
            json!({"network": {"classID": 1}}),
            "linux.resources.network",
        ),
    ] {
        let e = v2::plan(&res(v.clone())).unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{v}");
        assert_eq!(field_of(e), field);
        v1::plan(&res(v)).unwrap();
    }
    let e = v1::plan(&res(json!({"unified": {"memory.high": "1"}}))).unwrap_err();
    assert_eq!(field_of(e), "linux.resources.unified");
}

#[test]
fn v2_device_rules_become_one_program_pseudo_write() {
    let w = v2::plan(&res(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
    ]})))
    .unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].file, super::device_program::PSEUDO_FILE);
    assert!(
        w[0].value.starts_with("deny a *:* rwm\nallow c *:* m\n"),
        "{}",
        w[0].value
    );
    assert!(w[0].value.ends_with("\nallow c 1:3 rw"), "{}", w[0].value);
    let bad = v2::plan(&res(json!({"devices": [{"allow": true, "type": "p"}]}))).unwrap_err();
    assert_eq!(field_of(bad), "linux.resources.devices[0]");
}

#[test]
fn unified_keys_are_written_after_the_rest_and_checked() {
    let w = v2::plan(&res(json!({
        "pids": {"limit": 3},
        "unified": {"memory.high": "1000", "cpu.weight.nice": "3"}
    })))
    .unwrap();
    assert_eq!(
        files(&w),
        [
            ("pids", "pids.max", "3"),
            ("cpu", "cpu.weight.nice", "3"),
            ("memory", "memory.high", "1000"),
        ]
    );
    for bad in ["cgroup.procs", "../x", "memory", "a/b.c"] {
        let e = v2::plan(&res(json!({"unified": {bad: "1"}}))).unwrap_err();
        assert_eq!(field_of(e), format!("linux.resources.unified[{bad:?}]"));
    }
}

#[test]
fn v1_deny_all_is_followed_by_the_default_devices_then_the_rest() {
    let mut out = Vec::new();
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_value(json!([
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "access": "r"},
    ]))
    .unwrap();
    v1::devices(&rules, &mut out).unwrap();
    let f = files(&out);
    assert_eq!(f[0], ("devices", "devices.deny", "a *:* rwm"));
    assert_eq!(f[1], ("devices", "devices.allow", "c *:* m"));
    assert_eq!(f[f.len() - 2], ("devices", "devices.deny", "c 1:3 rw"));
    assert_eq!(f[f.len() - 1], ("devices", "devices.allow", "b 8:* r"));
}

#[test]
fn shares_and_weights_convert_like_runc() {
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
    assert_eq!(v2::shares_to_weight(1024), 39);
    assert_eq!(v2::blkio_to_io_weight(10), 1);
    assert_eq!(v2::blkio_to_io_weight(1000), 10_000);
}

/// A fake v2 tree: `<tmp>/root` (controllers: memory pids io) /
/// `corral` / `<leaf>`, each level with `cgroup.controllers` and
/// `cgroup.subtree_control`, the leaf with the files listed.
struct FakeTree {
    root: PathBuf,
    leaf: PathBuf,
}

impl FakeTree {
    fn new(name: &str, leaf_files: &[&str]) -> FakeTree {
        let root =
            std::env::temp_dir().join(format!("corral-cgtest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let leaf = root.join("corral").join("c1");
        std::fs::create_dir_all(&leaf).unwrap();
        for dir in [&root, &root.join("corral")] {
            std::fs::write(dir.join("cgroup.controllers"), "memory pids io\n").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        std::fs::write(leaf.join("cgroup.controllers"), "").unwrap();
        for f in leaf_files {
            std::fs::write(leaf.join(f), "").unwrap();
        }
        FakeTree { root, leaf }
    }

    fn paths(&self) -> CgroupPaths {
        CgroupPaths {
            v2: true,
            dirs: vec![CgroupDir {
                controllers: Vec::new(),
                path: self.leaf.clone(),
                owned: true,
            }],
        }
    }

    fn read(&self, p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn v2_apply_enables_controllers_and_writes_files_with_fallbacks() {
    let t = FakeTree::new(
        "apply",
        &["memory.max", "memory.swap.max", "pids.max", "io.weight"],
    );
    let r = res(json!({
        "memory": {"limit": 4096, "swap": 8192},
        "pids": {"limit": 9},
        "blockIO": {"weight": 1000}
    }));
    tree::apply(&t.paths(), &v2::plan(&r).unwrap()).unwrap();
    assert_eq!(t.read(&t.leaf.join("memory.max")), "4096");
    assert_eq!(t.read(&t.leaf.join("memory.swap.max")), "4096");
    assert_eq!(t.read(&t.leaf.join("pids.max")), "9");
    // No io.bfq.weight here: the converted io.weight is written instead.
    assert_eq!(t.read(&t.leaf.join("io.weight")), "default 10000");
    // Enabled on each level above the leaf (the fake files just record
    // the last write).
    assert_eq!(t.read(&t.root.join("cgroup.subtree_control")), "+io");
    assert_eq!(t.read(&t.root.join("corral/cgroup.subtree_control")), "+io");
}

#[test]
fn v2_apply_refuses_a_controller_the_tree_lacks_naming_the_field() {
    let t = FakeTree::new("lacks", &[]);
    let r = res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}));
    let e = tree::apply(&t.paths(), &v2::plan(&r).unwrap()).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert_eq!(field_of(e), "linux.resources.hugepageLimits[0]");
}

#[test]
fn v2_apply_reports_a_missing_file_as_unsupported() {
    let t = FakeTree::new("missing", &[]);
    let r = res(json!({"unified": {"memory.nosuch": "1"}}));
    let e = tree::apply(&t.paths(), &v2::plan(&r).unwrap()).unwrap_err();
    assert_eq!(field_of(e), "linux.resources.unified[\"memory.nosuch\"]");
}

#[test]
fn v2_stats_and_oom_kills_read_from_the_tree() {
    let t = FakeTree::new("stats", &[]);
    let w = |f: &str, s: &str| std::fs::write(t.leaf.join(f), s).unwrap();
    w(
        "cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 70\n",
    );
    w("memory.current", "4096\n");
    w("memory.max", "max\n");
    w("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    w("pids.current", "2\n");
    w("pids.max", "max\n");
    w(
        "io.stat",
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    w("hugetlb.2MB.current", "0\n");
    let p = t.paths();
    let s = stats::read(&p);
    assert_eq!(s.cpu.usage.total, 1_500_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 4);
    assert_eq!(s.cpu.throttling.throttled_time, 70_000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 3);
    assert_eq!(s.memory.oom_kills, 1);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 0);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
    assert!(s.hugetlb.contains_key("2MB"));
    assert_eq!(stats::oom_kills(&p), Some(1));
}

#[test]
fn v1_setup_skips_named_and_unified_hierarchies() {
    let layout = crate::cgroup_layout::Layout::parse(
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
         35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
         41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        "4:memory:/k\n3:cpu,cpuacct:/\n0::/\n",
    );
    let setup = Setup::detect(&layout);
    let p = setup.paths(&path::placement("c1", None).unwrap());
    assert!(!p.v2);
    let dirs: Vec<_> = p.dirs.iter().map(|d| d.path.clone()).collect();
    assert_eq!(
        dirs,
        [
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/corral/c1"),
            PathBuf::from("/sys/fs/cgroup/memory/k/corral/c1"),
        ]
    );
    assert_eq!(p.dir_of("cpuacct"), Some(dirs[0].as_path()));
    assert_eq!(p.dir_of("pids"), None);
}

#[test]
fn pure_v2_setup_is_one_directory() {
    let layout = crate::cgroup_layout::Layout::parse(
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/user.slice\n",
    );
    let p = Setup::detect(&layout).paths(&path::placement("c1", None).unwrap());
    assert!(p.v2);
    assert_eq!(
        p.dirs[0].path,
        Path::new("/sys/fs/cgroup/user.slice/corral/c1")
    );
}
