use super::*;
use serde_json::json;

/// runc's `spec` output with `linux.resources` removed.
fn runc_default() -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    })
}

fn spec_of(value: serde_json::Value) -> Spec {
    Spec::from_oci(serde_json::from_value(value).unwrap(), "/bundle")
}

fn plan_of(value: serde_json::Value) -> Result<Plan> {
    let layout = Layout::parse(
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
        "1:cpu:/\n",
    );
    plan("c1", &spec_of(value), &layout, StartVia::Socket)
}

fn err_of(value: serde_json::Value) -> String {
    plan_of(value).unwrap_err().to_string()
}

#[test]
fn runc_default_config_translates() {
    let p = plan_of(runc_default()).unwrap();
    let want = libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNS;
    assert_eq!(p.clone_flags, want as u64);
    let init = p.init;
    assert_eq!(
        init.rootfs.as_path(),
        std::path::Path::new("/bundle/rootfs")
    );
    assert!(init.readonly_root);
    assert!(init.loopback_up);
    assert_eq!(init.hostname.as_deref(), Some("runc"));
    assert_eq!(init.root_propagation, libc::MS_SLAVE | libc::MS_REC);
    let caps = init.process.capabilities.unwrap();
    let three = (1 << 29) | (1 << 5) | (1 << 10);
    assert_eq!(
        (
            caps.bounding,
            caps.effective,
            caps.permitted,
            caps.ambient,
            caps.inheritable
        ),
        (three, three, three, three, 0)
    );
    assert_eq!(
        init.process.rlimits,
        [Rlimit {
            resource: libc::RLIMIT_NOFILE,
            soft: 1024,
            hard: 1024
        }]
    );
    assert!(init.process.no_new_privileges);
    assert!(init.process.terminal);
    assert_eq!(init.devices.len(), 6);
    assert!(
        init.symlinks
            .iter()
            .any(|s| s.link.as_bytes() == b"/dev/ptmx")
    );
    // proc, dev, then the cgroup tmpfs + 1 hierarchy + final ro remount.
    assert_eq!(init.mounts.len(), 5);
}

#[test]
fn resources_and_cgroups_path_are_left_to_the_cgroup_plan() {
    let mut v = runc_default();
    v["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    v["linux"]["cgroupsPath"] = json!("/a/b");
    plan_of(v).unwrap();
}

#[test]
fn an_empty_resources_object_is_accepted() {
    let mut v = runc_default();
    v["linux"]["resources"] = json!({});
    plan_of(v).unwrap();
}

#[test]
fn user_namespace_without_mappings_is_refused_naming_the_field() {
    let mut v = runc_default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    assert_eq!(
        err_of(v),
        "invalid linux.uidMappings: a new user namespace needs at least one mapping"
    );
}

#[test]
fn user_namespace_with_mappings_translates() {
    let mut v = runc_default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let p = plan_of(v).unwrap();
    assert_ne!(p.clone_flags & libc::CLONE_NEWUSER as u64, 0);
    let maps = p.id_maps.unwrap();
    assert_eq!(
        (maps.uid_map.as_str(), maps.gid_map.as_str()),
        ("0 1000 1\n", "0 1000 1\n")
    );
}

#[test]
fn missing_mount_namespace_is_refused() {
    let mut v = runc_default();
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}]);
    assert!(err_of(v).contains("mount namespace is required"));
}

#[test]
fn duplicate_namespace_is_refused() {
    let mut v = runc_default();
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "pid"}));
    assert!(err_of(v).contains("linux.namespaces[5]"));
}

#[test]
fn hostname_without_uts_namespace_is_refused() {
    let mut v = runc_default();
    v["linux"]["namespaces"] = json!([{"type": "mount"}]);
    assert!(err_of(v).starts_with("invalid hostname"));
}

#[test]
fn empty_args_are_refused() {
    let mut v = runc_default();
    v["process"]["args"] = json!([]);
    assert!(err_of(v).starts_with("invalid process.args"));
}

#[test]
fn soft_rlimit_above_hard_is_refused() {
    let mut v = runc_default();
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 20}]);
    assert!(err_of(v).contains("process.rlimits[0]"));
}

#[test]
fn host_wide_sysctl_is_refused() {
    let mut v = runc_default();
    v["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    assert!(err_of(v).contains("not namespaced"));
}

#[test]
fn net_sysctl_needs_a_network_namespace() {
    let mut v = runc_default();
    v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let err = err_of(v);
    assert!(
        err.starts_with("invalid linux.sysctl[\"net.ipv4.ip_forward\"]: needs a"),
        "{err}"
    );
}

#[test]
fn hooks_split_between_runtime_and_init() {
    let mut v = runc_default();
    v["hooks"] = json!({
        "createRuntime": [{"path": "/bin/a"}],
        "createContainer": [{"path": "/bin/b", "args": ["b", "x"], "env": ["K=v"], "timeout": 3}],
        "startContainer": [{"path": "/bin/c"}],
        "poststart": [{"path": "/bin/true"}]
    });
    let hooks = plan_of(v).unwrap().init.hooks.unwrap();
    assert!(hooks.ask_parent);
    assert_eq!(hooks.create_container.len(), 1);
    let b = &hooks.create_container[0];
    assert_eq!(b.field, "hooks.createContainer[0]");
    assert_eq!(b.timeout_secs, Some(3));
    assert_eq!(b.args.len(), 2);
    assert_eq!(hooks.start_container[0].field, "hooks.startContainer[0]");
    let mut v = runc_default();
    v["hooks"] = json!({"poststop": [{"path": "/bin/true"}]});
    let hooks = plan_of(v).unwrap().init.hooks.unwrap();
    assert!(!hooks.ask_parent, "no runtime hook to wait for");
}

#[test]
fn bad_hooks_are_refused_naming_the_field() {
    let bad = [
        (
            json!({"poststart": [{"path": "true"}]}),
            "hooks.poststart[0].path",
        ),
        (
            json!({"prestart": [{"path": "/t", "timeout": 0}]}),
            "hooks.prestart[0].timeout",
        ),
        (
            json!({"createRuntime": [{"path": "/t", "env": ["NOEQ"]}]}),
            "hooks.createRuntime[0].env[0]",
        ),
    ];
    for (hooks, field) in bad {
        let mut v = runc_default();
        v["hooks"] = hooks;
        let err = err_of(v);
        assert!(err.starts_with(&format!("invalid {field}:")), "{err}");
    }
}

#[test]
fn an_allow_all_seccomp_profile_still_checks_the_architecture() {
    // As with libseccomp: calls of other architectures meet the bad-arch
    // action even when every call of the listed ones is allowed.
    let mut v = runc_default();
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
    let seccomp = plan_of(v).unwrap().init.seccomp.unwrap();
    assert_eq!(seccomp.filters.len(), 1);
}

#[test]
fn bind_mounted_dev_gets_no_default_nodes() {
    let mut v = runc_default();
    v["mounts"] =
        json!([{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]);
    let p = plan_of(v).unwrap();
    assert!(p.init.devices.is_empty());
    assert!(p.init.symlinks.is_empty());
}

#[test]
fn config_devices_override_defaults_and_are_validated() {
    let mut v = runc_default();
    v["linux"]["devices"] =
        json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}]);
    let p = plan_of(v.clone()).unwrap();
    let null = p
        .init
        .devices
        .iter()
        .find(|d| d.path.as_bytes() == b"/dev/null")
        .unwrap();
    assert_eq!(null.mode, 0o600);
    v["linux"]["devices"] = json!([{"path": "/etc/x", "type": "c", "major": 1, "minor": 3}]);
    assert!(err_of(v).contains("linux.devices[0].path"));
}
