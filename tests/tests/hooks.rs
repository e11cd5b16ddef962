//! OCI hooks: all six run at their moment and in their namespaces, with
//! `args`, `env` and the state JSON on stdin; failures fail `create` or
//! `start` (and leave nothing behind) or are only logged, as the runtime
//! spec says; a hook is killed at its timeout.
//!
//! Every hook is `probe hook-log FILE ...`, which appends one JSON line
//! (its argv, env, stdin, pid and namespaces) to FILE on the host. The
//! container's `/tmp` is a bind of the test's temp dir, so that
//! `startContainer` (whose path resolves inside the container) logs to the
//! same file.

use std::path::{Path, PathBuf};

use corral::oci_spec::runtime::{Hook, HookBuilder, Hooks, HooksBuilder, MountBuilder};
use corral::{Error, Spec};
use corral_tests::*;

/// Serialises this file's tests: they count this process's children.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

/// A hook running `probe hook-log <log> <then...>` with `HOOK=<label>`:
/// `host` picks the host's probe (runtime namespace, or before the pivot)
/// or the container's `/probe` (startContainer).
fn hook(label: &str, log: &Path, host: bool, then: &[&str], timeout: Option<i64>) -> Hook {
    let path = if host {
        bin_path("probe").to_path_buf()
    } else {
        PathBuf::from("/probe")
    };
    let mut args = vec![
        format!("probe-{label}"),
        "hook-log".to_owned(),
        log.to_string_lossy().into_owned(),
    ];
    args.extend(then.iter().map(|s| s.to_string()));
    let mut b = HookBuilder::default()
        .path(path)
        .args(args)
        .env(vec![format!("HOOK={label}")]);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().unwrap()
}

/// `probe_spec(args)` with the host dir `tmp` bound onto `/tmp` and these
/// hooks.
fn spec_with(args: &[&str], tmp: &Path, hooks: Hooks) -> Spec {
    let mut spec = probe_spec(args);
    let oci = spec.oci_mut();
    let mut mounts = oci.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination("/tmp")
            .typ("bind")
            .source(tmp)
            .options(vec!["rbind".to_owned(), "rw".to_owned()])
            .build()
            .unwrap(),
    );
    oci.set_mounts(Some(mounts));
    let mut annotations = std::collections::HashMap::new();
    annotations.insert("org.corral.test".to_owned(), "hooks".to_owned());
    oci.set_annotations(Some(annotations));
    oci.set_hooks(Some(hooks));
    spec
}

/// The JSON lines the hooks wrote, in order.
fn log_lines(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn label(line: &serde_json::Value) -> String {
    line["env"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("HOOK=")
        .to_owned()
}

fn state_of(line: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(line["stdin"].as_str().unwrap()).unwrap()
}

/// A runtime with a state dir in `tmp`.
fn runtime_in(tmp: &TempDir) -> corral::Runtime {
    corral::Runtime::builder()
        .state_dir(tmp.path().join("state"))
        .build()
        .unwrap()
}

/// No state dir, child, or cgroup is left for `id`, once the runtime is
/// gone too (its resident init is a child of this process while it lives).
fn assert_nothing_left(rt: corral::Runtime, tmp: &TempDir, id: &str, children_before: usize) {
    drop(rt);
    let state = tmp.path().join("state");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {state:?}: {left:?}");
    assert_eq!(child_count(), children_before, "a child was left");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let mount = match ctrl {
            "" => "unified".to_owned(),
            c => c.trim_start_matches("name=").to_owned(),
        };
        let dir = Path::new("/sys/fs/cgroup")
            .join(mount)
            .join(path.trim_start_matches('/'))
            .join("corral")
            .join(id);
        assert!(!dir.exists(), "cgroup {dir:?} was left");
    }
}

#[tokio::test]
async fn all_six_hooks_run_in_order_with_args_env_and_state_on_stdin() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("hooks-order");
    let log = tmp.path().join("hooks.log");
    let hooks = HooksBuilder::default()
        .create_runtime(vec![hook("createRuntime", &log, true, &[], Some(30))])
        .create_container(vec![hook("createContainer", &log, true, &[], Some(30))])
        .start_container(vec![hook(
            "startContainer",
            Path::new("/tmp/hooks.log"),
            false,
            &[],
            None,
        )])
        .poststart(vec![hook("poststart", &log, true, &[], None)])
        .poststop(vec![hook("poststop", &log, true, &[], None)])
        .build()
        .unwrap();
    let mut hooks = hooks;
    #[allow(deprecated)]
    hooks.set_prestart(Some(vec![hook("prestart", &log, true, &[], None)]));
    let spec = spec_with(
        &["/probe", "write", "/tmp/hooks.log.workload", "ran"],
        tmp.path(),
        hooks,
    );
    let bundle = spec.bundle().to_path_buf();
    let rt = runtime_in(&tmp);
    let id = unique_id("hooks");
    let mut c = rt.create(&id, spec).await.unwrap();
    let pid = c.pid();
    assert_eq!(
        log_lines(&log).iter().map(label).collect::<Vec<_>>(),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );
    c.start().await.unwrap();
    let status = c.wait().await.unwrap();
    assert!(status.success(), "{status}");
    c.delete().await.unwrap();
    let lines = log_lines(&log);
    let labels: Vec<String> = lines.iter().map(label).collect();
    assert_eq!(
        labels,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let host_mnt = host_ns("mnt");
    let host_uts = host_ns("uts");
    for line in &lines {
        let which = label(line);
        // argv is exactly the hook's args, argv[0] included; env is only
        // the hook's env.
        assert_eq!(line["args"][0], format!("probe-{which}"), "{line}");
        assert_eq!(line["args"][1], "hook-log", "{line}");
        assert_eq!(line["env"].as_array().unwrap().len(), 1, "{line}");
        let state = state_of(line);
        assert_eq!(state["id"], id.as_str(), "{which}: {state}");
        assert_eq!(state["pid"], pid, "{which}: {state}");
        assert_eq!(state["bundle"], bundle.to_str().unwrap(), "{which}");
        assert_eq!(state["annotations"]["org.corral.test"], "hooks", "{which}");
        assert!(state["ociVersion"].is_string(), "{which}");
        let want_status = match which.as_str() {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], want_status, "{which}");
        // Namespaces: createContainer and startContainer run in the
        // container's, the others in the runtime's.
        let in_container = which == "createContainer" || which == "startContainer";
        let mnt = line["ns"]["mnt"].as_str().unwrap();
        let uts = line["ns"]["uts"].as_str().unwrap();
        assert_eq!(mnt != host_mnt, in_container, "{which}: mnt {mnt}");
        assert_eq!(uts != host_uts, in_container, "{which}: uts {uts}");
    }
    // startContainer ran before the workload: the workload's file exists
    // and the hook saw the container's pid namespace.
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("hooks.log.workload")).unwrap(),
        "ran"
    );
}

#[tokio::test]
async fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("hooks-fail");
    let log = tmp.path().join("hooks.log");
    let hooks = HooksBuilder::default()
        .create_runtime(vec![hook(
            "createRuntime",
            &log,
            true,
            &["exit", "3"],
            None,
        )])
        .create_container(vec![hook("createContainer", &log, true, &[], None)])
        .poststop(vec![hook("poststop", &log, true, &[], None)])
        .build()
        .unwrap();
    let spec = spec_with(&["/probe", "exit", "0"], tmp.path(), hooks);
    let rt = runtime_in(&tmp);
    let id = unique_id("hookfail");
    let before = child_count();
    let err = rt.create(&id, spec).await.unwrap_err();
    match &err {
        Error::Hook { field, reason, .. } => {
            assert_eq!(field, "hooks.createRuntime[0]");
            assert!(reason.contains("3"), "{reason}");
        }
        other => panic!("want Error::Hook, got {other:?}"),
    }
    assert_nothing_left(rt, &tmp, &id, before);
    // createContainer never ran; poststop did (the lifecycle goes on at
    // delete, as runc does).
    let labels: Vec<String> = log_lines(&log).iter().map(label).collect();
    assert_eq!(labels, ["createRuntime", "poststop"]);
}

/// A cgroup the kernel refuses fails the create before the container's
/// lifecycle begins, with no poststop, also where the cgroup is made only
/// after the init was cloned (v1, no resident init: sync 0b).
#[tokio::test]
async fn a_cgroup_the_kernel_refuses_fails_create_without_poststop() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("hooks-badcpus");
    let log = tmp.path().join("hooks.log");
    let hooks = HooksBuilder::default()
        .poststop(vec![hook("poststop", &log, true, &[], None)])
        .build()
        .unwrap();
    let mut spec = spec_with(&["/probe", "exit", "0"], tmp.path(), hooks);
    // More CPUs than the machine has: accepted by the plan, refused by
    // the kernel when cpuset.cpus is written.
    let resources: corral::oci_spec::runtime::LinuxResources =
        serde_json::from_value(serde_json::json!({"cpu": {"cpus": "1000"}})).unwrap();
    spec.oci_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(resources));
    for resident in [false, true] {
        let rt = corral::Runtime::builder()
            .state_dir(tmp.path().join("state"))
            .resident_init(resident)
            .build()
            .unwrap();
        let id = unique_id("badcpus");
        let before = child_count();
        let err = rt.create(&id, spec.clone()).await.unwrap_err();
        assert!(
            err.to_string().contains("linux.resources.cpu.cpus"),
            "resident {resident}: {err}"
        );
        assert_nothing_left(rt, &tmp, &id, before);
        assert!(
            log_lines(&log).is_empty(),
            "resident {resident}: a hook ran: {:?}",
            log_lines(&log)
        );
    }
}

#[tokio::test]
async fn failing_create_container_hook_fails_create_naming_step_hooks() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("hooks-cc-fail");
    let log = tmp.path().join("hooks.log");
    let hooks = HooksBuilder::default()
        .create_container(vec![hook(
            "createContainer",
            &log,
            true,
            &["exit", "4"],
            None,
        )])
        .build()
        .unwrap();
    let spec = spec_with(&["/probe", "exit", "0"], tmp.path(), hooks);
    let rt = runtime_in(&tmp);
    let id = unique_id("ccfail");
    let before = child_count();
    let err = rt.create(&id, spec).await.unwrap_err();
    let init = err.init_error().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(init.step, corral::Step::Hooks, "{init}");
    assert!(init.message.contains("hooks.createContainer[0]"), "{init}");
    assert!(init.message.contains("status 4"), "{init}");
    assert_nothing_left(rt, &tmp, &id, before);
}

#[tokio::test]
async fn failing_start_container_hook_fails_start_and_cleans_up() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("hooks-sc-fail");
    let hooks = HooksBuilder::default()
        .start_container(vec![hook(
            "startContainer",
            Path::new("/tmp/hooks.log"),
            false,
            &["exit", "5"],
            None,
        )])
        .build()
        .unwrap();
    let spec = spec_with(
        &["/probe", "write", "/tmp/workload", "ran"],
        tmp.path(),
        hooks,
    );
    let rt = runtime_in(&tmp);
    let id = unique_id("scfail");
    let before = child_count();
    let mut c = rt.create(&id, spec).await.unwrap();
    let err = c.start().await.unwrap_err();
    let init = err.init_error().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(init.step, corral::Step::Hooks, "{init}");
    assert!(!tmp.path().join("workload").exists(), "the workload ran");
    c.delete().await.unwrap();
    assert_nothing_left(rt, &tmp, &id, before);
}

#[tokio::test]
async fn hanging_hooks_are_killed_at_their_timeout() {
    require_root();
    let _serial = serial().await;
    for (kind, in_init) in [("createRuntime", false), ("createContainer", true)] {
        let tmp = TempDir::new("hooks-timeout");
        let log = tmp.path().join("hooks.log");
        let h = hook(kind, &log, true, &["pause"], Some(1));
        let hooks = if in_init {
            HooksBuilder::default().create_container(vec![h])
        } else {
            HooksBuilder::default().create_runtime(vec![h])
        }
        .build()
        .unwrap();
        let spec = spec_with(&["/probe", "exit", "0"], tmp.path(), hooks);
        let rt = runtime_in(&tmp);
        let id = unique_id("hooktimeout");
        let before = child_count();
        let err = rt.create(&id, spec).await.unwrap_err();
        let text = format!(
            "{err} {}",
            err.init_error().map(|e| e.to_string()).unwrap_or_default()
        );
        assert!(text.contains("timeout of 1 s"), "{kind}: {text}");
        assert!(text.contains(&format!("hooks.{kind}[0]")), "{kind}: {text}");
        // The hook itself is gone (killed and reaped) by the time create
        // returns.
        let lines = log_lines(&log);
        assert_eq!(lines.len(), 1, "{kind}");
        let hook_pid = lines[0]["pid"].as_i64().unwrap();
        if !in_init {
            assert!(
                !Path::new(&format!("/proc/{hook_pid}")).exists(),
                "{kind}: hook {hook_pid} still exists"
            );
        }
        assert_nothing_left(rt, &tmp, &id, before);
    }
}

#[tokio::test]
async fn failing_poststart_and_poststop_hooks_are_only_logged() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("hooks-poststart");
    let log = tmp.path().join("hooks.log");
    let hooks = HooksBuilder::default()
        .poststart(vec![
            hook("poststart", &log, true, &["exit", "1"], None),
            hook("poststart2", &log, true, &[], None),
        ])
        .poststop(vec![hook("poststop", &log, true, &["exit", "1"], None)])
        .build()
        .unwrap();
    let spec = spec_with(&["/probe", "exit", "0"], tmp.path(), hooks);
    let rt = runtime_in(&tmp);
    let id = unique_id("poststart");
    let mut c = rt.create(&id, spec).await.unwrap();
    c.start().await.unwrap();
    assert!(c.wait().await.unwrap().success());
    c.delete().await.unwrap();
    let labels: Vec<String> = log_lines(&log).iter().map(label).collect();
    assert_eq!(labels, ["poststart", "poststart2", "poststop"]);
}

#[tokio::test]
async fn bad_hooks_are_refused_naming_the_field_and_leave_nothing() {
    require_root();
    let _serial = serial().await;
    let cases: [(Hooks, &str); 2] = [
        (
            HooksBuilder::default()
                .poststart(vec![HookBuilder::default().path("probe").build().unwrap()])
                .build()
                .unwrap(),
            "hooks.poststart[0].path",
        ),
        (
            HooksBuilder::default()
                .create_runtime(vec![
                    HookBuilder::default()
                        .path("/bin/true")
                        .timeout(-1)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
            "hooks.createRuntime[0].timeout",
        ),
    ];
    for (hooks, field) in cases {
        let tmp = TempDir::new("hooks-bad");
        let spec = spec_with(&["/probe", "exit", "0"], tmp.path(), hooks);
        let id = unique_id("badhook");
        let before = child_count();
        let rt = runtime_in(&tmp);
        let err = rt.create(&id, spec).await.unwrap_err();
        assert!(matches!(err, Error::InvalidSpec { .. }), "{err:?}");
        assert!(err.to_string().contains(field), "{field} not in {err}");
        assert_nothing_left(rt, &tmp, &id, before);
    }
}
