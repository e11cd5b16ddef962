//! OCI config fields beyond the default spec, each checked from inside the
//! container with `probe` (or on the host, for hooks), plus a bad-input
//! test per field: a clear error naming the field and nothing left on the
//! host. `docs/spec-coverage.md` maps each field to its tests here.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use corral::oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceType as Ns};
use corral::{Error, Spec};
use corral_tests::cli::{Bundle, corral_bin};
use corral_tests::*;

/// The uid and gid an unprivileged runtime runs as in the rootless tests.
const NOBODY: u32 = 65534;

fn id_map(container: u32, host: u32, size: u32) -> corral::oci_spec::runtime::LinuxIdMapping {
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
    add_namespace(&mut spec, Ns::User, None);
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_uid_mappings(Some(vec![id_map(0, 100_000, 65536)]));
    linux.set_gid_mappings(Some(vec![id_map(0, 100_000, 65536)]));
    spec
}

/// A runtime with a state dir in `tmp`, to check nothing is left there.
fn runtime_in(tmp: &TempDir) -> corral::Runtime {
    corral::Runtime::builder()
        .state_dir(tmp.path().join("state"))
        .build()
        .unwrap()
}

/// The state dir holds no container.
fn assert_state_empty(tmp: &TempDir) {
    let dir = tmp.path().join("state");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {dir:?}: {left:?}");
}

/// Every test in this file holds this while it runs containers: what they
/// share is this process, whose child list `assert_refused` counts.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

/// Creates `spec` and expects an `InvalidSpec` or `Unsupported` error that
/// names `field`, with no child and no state left behind.
async fn assert_refused(spec: Spec, field: &str) {
    let tmp = TempDir::new("refused");
    let before = child_count();
    let err = runtime_in(&tmp)
        .create(unique_id("refused"), spec)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidSpec { .. } | Error::Unsupported { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(field),
        "{field} not named in: {err}"
    );
    assert_eq!(child_count(), before, "a child was left");
    assert_state_empty(&tmp);
}

// ---------------------------------------------------------------------------
// linux.namespaces: user, linux.uidMappings, linux.gidMappings

#[tokio::test]
async fn userns_maps_are_written_before_the_init_runs_and_caps_survive() {
    require_root();
    let _serial = serial().await;
    let rt = runtime();
    let (status, out) = run_capture(&rt, userns_spec(&["/probe", "read", "/proc/self/uid_map"]))
        .await
        .unwrap();
    assert!(status.success(), "{status}: {out}");
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields, ["0", "100000", "65536"], "{out}");
    let (_, gid_map) = run_capture(&rt, userns_spec(&["/probe", "read", "/proc/self/gid_map"]))
        .await
        .unwrap();
    assert_eq!(
        gid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let info = probe_info(&rt, userns_spec(&["/probe", "info"]))
        .await
        .unwrap();
    assert_eq!(info["euid"], 0, "{info}");
    assert_ne!(info["ns"]["user"], host_ns("user"));
    // The default capabilities are kept across the exec of the init and of
    // the workload: with an unmapped uid at exec they would all be gone.
    let eff = info["caps"]["CapEff"].as_str().unwrap_or("0");
    assert_ne!(u64::from_str_radix(eff, 16).unwrap_or(0), 0, "{info}");
}

#[tokio::test]
async fn userns_additional_gids_are_set_when_root_allows_setgroups() {
    require_root();
    let _serial = serial().await;
    let mut spec = userns_spec(&["/probe", "info"]);
    let p = spec.oci_mut().process_mut().as_mut().unwrap();
    let mut user = p.user().clone();
    user.set_additional_gids(Some(vec![7, 9]));
    p.set_user(user);
    let info = probe_info(&runtime(), spec).await.unwrap();
    assert_eq!(info["groups"], serde_json::json!([7, 9]), "{info}");
}

#[tokio::test]
async fn id_mappings_without_a_user_namespace_are_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_uid_mappings(Some(vec![id_map(0, 100_000, 1)]));
    assert_refused(spec, "linux.uidMappings").await;
}

#[tokio::test]
async fn userns_without_gid_mappings_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = userns_spec(&["/probe"]);
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_gid_mappings(None);
    assert_refused(spec, "linux.gidMappings").await;
}

#[tokio::test]
async fn userns_overlapping_mappings_are_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = userns_spec(&["/probe"]);
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_uid_mappings(Some(vec![id_map(0, 100_000, 10), id_map(5, 200_000, 1)]));
    assert_refused(spec, "linux.uidMappings[1]").await;
}

/// Runs `bin args` as uid/gid 65534 with no supplementary groups.
fn as_nobody(dir: &Path, bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .expect("spawn as nobody")
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

#[test]
fn rootless_busybox_bundle_runs_as_an_unprivileged_user() {
    require_root();
    let _serial = CHILDREN.blocking_lock();
    let tmp = TempDir::new("rootless");
    let bundle_dir = tmp.path().join("bundle");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&bundle_dir).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    chown_nobody(tmp.path());
    chown_nobody(&bundle_dir);
    chown_nobody(&root);
    build_busybox_rootfs(&bundle_dir.join("rootfs")).unwrap();
    let corral = corral_bin();
    let spec = as_nobody(&bundle_dir, &corral, &["--rootless=true", "spec"]);
    assert!(spec.status.success(), "{spec:?}");
    let mut bundle = Bundle::load(&bundle_dir);
    bundle.set_terminal(false);
    bundle.set_args(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status",
    ]);
    let id = unique_id("rootless");
    let root_arg = root.to_str().unwrap();
    let run = as_nobody(
        &bundle_dir,
        &corral,
        &["--root", root_arg, "run", "--bundle", ".", &id],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{}\n{stdout}\n{stderr}", run.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0", "root inside: {stdout}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"],
        "{stdout}"
    );
    assert_ne!(
        lines.get(2).copied(),
        Some("CapEff:\t0000000000000000"),
        "capabilities survive: {stdout}"
    );
    assert!(
        std::fs::read_dir(&root).unwrap().next().is_none(),
        "run leaves no state"
    );
    assert!(host_mounts_under(&bundle_dir).is_empty());
}

// ---------------------------------------------------------------------------
// linux.namespaces[].path, time, linux.timeOffsets

/// `readlink /proc/<pid>/ns/<name>`.
fn ns_of(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn namespaces_joined_by_path_are_shared_with_their_holder() {
    require_root();
    let _serial = serial().await;
    let rt = runtime();
    let mut holder_spec = probe_spec(&["/probe", "pause"]);
    add_namespace(&mut holder_spec, Ns::Network, None);
    add_namespace(&mut holder_spec, Ns::Cgroup, None);
    let mut holder = rt.create(unique_id("holder"), holder_spec).await.unwrap();
    holder.start().await.unwrap();
    let pid = holder.pid();
    let mut spec = probe_spec(&["/probe", "info"]);
    let kinds = [
        (Ns::Network, "net"),
        (Ns::Uts, "uts"),
        (Ns::Ipc, "ipc"),
        (Ns::Pid, "pid"),
        (Ns::Cgroup, "cgroup"),
    ];
    for (typ, name) in kinds {
        add_namespace(&mut spec, typ, Some(&format!("/proc/{pid}/ns/{name}")));
    }
    let want: Vec<String> = kinds.iter().map(|(_, n)| ns_of(pid, n)).collect();
    let info = probe_info(&rt, spec).await;
    holder.kill(libc::SIGKILL).unwrap();
    holder.wait().await.unwrap();
    holder.delete().await.unwrap();
    let info = info.unwrap();
    for ((_, name), want) in kinds.iter().zip(&want) {
        assert_eq!(info["ns"][name], **want, "{name}: {info}");
    }
    // A member of the joined pid namespace, not pid 1 of a new one: it
    // sees the holder as pid 1.
    assert_ne!(info["pid"], 1, "{info}");
    let procs = info["procs"].as_array().unwrap();
    assert!(procs.contains(&serde_json::json!(1)), "{info}");
}

/// A pod's order: a member of another container's pid namespace exits
/// and is waited for, the holder is killed and waited for, and only then
/// are both deleted. The member must be reaped at its wait: a zombie left
/// in the holder's pid namespace would keep the holder's exit (and so
/// this wait) from ever completing.
#[tokio::test]
async fn a_waited_member_of_a_joined_pid_namespace_does_not_hold_up_its_holder() {
    require_root();
    let _serial = serial().await;
    let rt = runtime();
    let mut holder = rt
        .create(unique_id("pidholder"), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    holder.start().await.unwrap();
    let mut spec = probe_spec(&["/probe", "exit", "0"]);
    add_namespace(
        &mut spec,
        Ns::Pid,
        Some(&format!("/proc/{}/ns/pid", holder.pid())),
    );
    let mut member = rt.create(unique_id("pidmember"), spec).await.unwrap();
    member.start().await.unwrap();
    assert!(member.wait().await.unwrap().success());
    holder.kill(libc::SIGKILL).unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(30), holder.wait()).await;
    // Deleted before the verdict: with the bug, this releases the member,
    // which lets the holder exit and the test end.
    member.delete().await.unwrap();
    let status = waited.expect("the holder's exit completes").unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    holder.delete().await.unwrap();
}

#[tokio::test]
async fn joining_a_missing_namespace_path_is_refused_naming_it() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    add_namespace(&mut spec, Ns::Network, Some("/nonexistent/ns/net"));
    assert_refused(spec, "linux.namespaces[4].path").await;
}

#[tokio::test]
async fn joining_a_namespace_of_another_type_is_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    add_namespace(&mut spec, Ns::Network, Some("/proc/self/ns/uts"));
    assert_refused(spec, "linux.namespaces[4].path").await;
    let mut spec = probe_spec(&["/probe"]);
    add_namespace(&mut spec, Ns::Network, Some("/etc/hostname"));
    assert_refused(spec, "linux.namespaces[4].path").await;
}

#[tokio::test]
async fn time_namespace_applies_boottime_and_monotonic_offsets() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "read", "/proc/uptime"]);
    add_namespace(&mut spec, Ns::Time, None);
    let offsets: std::collections::HashMap<String, corral::oci_spec::runtime::LinuxTimeOffset> =
        serde_json::from_value(serde_json::json!({
            "boottime": {"secs": 10_000_000},
            "monotonic": {"secs": 20_000_000, "nanosecs": 5}
        }))
        .unwrap();
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_time_offsets(Some(offsets));
    let (status, out) = run_capture(&runtime(), spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    let uptime: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(uptime > 10_000_000.0, "boottime offset not applied: {out}");
    let mut spec = probe_spec(&["/probe", "info"]);
    add_namespace(&mut spec, Ns::Time, None);
    let info = probe_info(&runtime(), spec).await.unwrap();
    assert_ne!(info["ns"]["time"], host_ns("time"), "{info}");
}

#[tokio::test]
async fn time_offsets_without_a_time_namespace_are_refused() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    let offsets = serde_json::from_value(serde_json::json!({"boottime": {"secs": 1}})).unwrap();
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_time_offsets(Some(offsets));
    assert_refused(spec, "linux.timeOffsets").await;
}

// ---------------------------------------------------------------------------
// linux.seccomp

fn with_seccomp(args: &[&str], profile: serde_json::Value) -> Spec {
    let mut spec = probe_spec(args);
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    linux.set_seccomp(Some(serde_json::from_value(profile).unwrap()));
    spec
}

#[tokio::test]
async fn seccomp_denies_mkdir_with_eperm() {
    require_root();
    let _serial = serial().await;
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let mut spec = with_seccomp(&["/probe", "mkdir", "/dev/shm/d"], profile.clone());
    spec.oci_mut()
        .process_mut()
        .as_mut()
        .unwrap()
        .set_no_new_privileges(Some(true));
    let (status, out) = run_capture(&runtime(), spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    assert_eq!(out.trim(), libc::EPERM.to_string(), "mkdir errno");
    // The same without noNewPrivileges (loaded before capabilities drop).
    let spec = with_seccomp(&["/probe", "mkdir", "/dev/shm/d"], profile);
    let (_, out) = run_capture(&runtime(), spec).await.unwrap();
    assert_eq!(out.trim(), libc::EPERM.to_string());
    let info = probe_info(
        &runtime(),
        with_seccomp(
            &["/probe", "info"],
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(info["seccomp"], 2, "filter mode: {info}");
}

#[tokio::test]
async fn seccomp_kills_the_process_on_getpid() {
    require_root();
    let _serial = serial().await;
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    let (status, out) = run_capture(&runtime(), with_seccomp(&["/probe", "getpid"], profile))
        .await
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status}: {out}");
}

#[tokio::test]
async fn seccomp_argument_conditions_select_the_call() {
    require_root();
    let _serial = serial().await;
    // exit_group kills only when its status is 9 (SCMP_CMP_EQ on arg 0).
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_KILL_PROCESS",
                      "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}]
    });
    let (status, _) = run_capture(
        &runtime(),
        with_seccomp(&["/probe", "exit", "7"], profile.clone()),
    )
    .await
    .unwrap();
    assert_eq!(status.code(), Some(7));
    let (status, _) = run_capture(&runtime(), with_seccomp(&["/probe", "exit", "9"], profile))
        .await
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGSYS));
}

#[tokio::test]
async fn seccomp_bad_notify_listener_and_architectures_are_refused() {
    require_root();
    let _serial = serial().await;
    let notify = |extra: serde_json::Value| {
        let mut p = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        with_seccomp(&["/probe"], p)
    };
    // NOTIFY needs the agent's socket; it must be absolute.
    assert_refused(notify(serde_json::json!({})), "linux.seccomp.listenerPath").await;
    assert_refused(
        notify(serde_json::json!({"listenerPath": "agent.sock"})),
        "linux.seccomp.listenerPath",
    )
    .await;
    assert_refused(
        notify(serde_json::json!({"listenerPath": "/a.sock", "defaultAction": "SCMP_ACT_NOTIFY"})),
        "linux.seccomp.defaultAction",
    )
    .await;
    let spec = with_seccomp(
        &["/probe"],
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
    );
    assert_refused(spec, "linux.seccomp.flags").await;
    // No syscall table for PA-RISC.
    let spec = with_seccomp(
        &["/probe"],
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_PARISC"]}),
    );
    assert_refused(spec, "linux.seccomp.architectures[1]").await;
}

#[test]
fn seccomp_unknown_arch_and_flag_names_fail_loading_the_bundle() {
    for (field, bad) in [
        ("architectures", serde_json::json!(["SCMP_ARCH_BOGUS"])),
        ("flags", serde_json::json!(["SECCOMP_FILTER_FLAG_BOGUS"])),
    ] {
        let tmp = TempDir::new("seccomp-bad");
        let mut config = serde_json::to_value(probe_spec(&["/probe"]).oci()).unwrap();
        config["linux"]["seccomp"] =
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", field: bad});
        std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
        let err = Spec::from_bundle(tmp.path()).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.contains("BOGUS"), "{chain}");
    }
}

/// A listening agent's socket in `tmp`.
fn agent_socket(tmp: &TempDir) -> (std::path::PathBuf, tokio::net::UnixListener) {
    let path = tmp.path().join("agent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    (path, listener)
}

/// mkdir and mkdirat fail with EXDEV, getpid returns 4242; nothing else
/// is notified.
fn agent_answer(nr: i32, _args: [u64; 6]) -> corral_tests::seccomp_agent::Answer {
    match i64::from(nr) {
        libc::SYS_mkdir | libc::SYS_mkdirat => Err(libc::EXDEV),
        libc::SYS_getpid => Ok(4242),
        other => panic!("unexpected notification for syscall {other}"),
    }
}

/// Runs `spec` with piped stdout; returns the container's pid, status and
/// output.
async fn run_with_pid(spec: Spec) -> (i32, corral::ExitStatus, String) {
    use tokio::io::AsyncReadExt;
    let mut c = runtime()
        .create(unique_id("notify"), spec)
        .stdout(corral::Stdio::piped())
        .await
        .unwrap();
    let pid = c.pid();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).await.unwrap();
    let status = c.wait().await.unwrap();
    c.delete().await.unwrap();
    (pid, status, text)
}

#[tokio::test]
async fn seccomp_notify_hands_the_fd_to_the_agent_whose_answer_is_the_result() {
    require_root();
    let _serial = serial().await;
    // With and without noNewPrivileges (the filter is loaded before Ready
    // either way), and with WAIT_KILLABLE_RECV once.
    for (args, nnp, flags, want) in [
        (
            ["/probe", "mkdir", "/dev/shm/d"],
            true,
            vec![],
            libc::EXDEV.to_string(),
        ),
        (
            ["/probe", "getpid", ""],
            false,
            vec!["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "4242".to_owned(),
        ),
    ] {
        let tmp = TempDir::new("notify");
        let (path, listener) = agent_socket(&tmp);
        let agent = tokio::spawn(corral_tests::seccomp_agent::serve(listener, agent_answer));
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let mut spec = with_seccomp(
            &args,
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "listenerPath": path,
                "listenerMetadata": "agent-meta",
                "flags": flags,
                "syscalls": [{"names": ["mkdir", "mkdirat", "getpid"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        );
        spec.oci_mut()
            .process_mut()
            .as_mut()
            .unwrap()
            .set_no_new_privileges(Some(nnp));
        let (pid, status, out) = run_with_pid(spec).await;
        assert!(status.success(), "{status}: {out}");
        assert_eq!(out.trim(), want, "the agent's answer");
        let (state, answered) = agent.await.unwrap().unwrap();
        assert!(answered >= 1, "{answered} answered");
        assert_eq!(state["fds"], serde_json::json!(["seccompFd"]), "{state}");
        assert_eq!(state["pid"], pid, "{state}");
        assert_eq!(state["metadata"], "agent-meta", "{state}");
        assert_eq!(state["state"]["pid"], pid, "{state}");
        assert_eq!(state["state"]["status"], "creating", "{state}");
        assert!(
            state["state"]["id"]
                .as_str()
                .unwrap()
                .starts_with("notify-"),
            "{state}"
        );
        assert!(state["ociVersion"].is_string(), "{state}");
    }
}

#[tokio::test]
async fn seccomp_filter_applies_to_exec_and_each_exec_gets_its_own_listener_fd() {
    use corral_tests::seccomp_agent::{answer_until_gone, receive};
    use tokio::io::AsyncReadExt;
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("notify-exec");
    let (path, listener) = agent_socket(&tmp);
    // ERRNO on mkdir for the plain filter; the NOTIFY profile sends mkdir
    // and mkdirat to the agent (EXDEV).
    for notify in [false, true] {
        let rule = if notify {
            serde_json::json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"})
        } else {
            serde_json::json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
        };
        let spec = with_seccomp(
            &["/probe", "sleep", "30"],
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": path, "listenerMetadata": "exec-meta", "syscalls": [rule]}),
        );
        let rt = runtime_in(&tmp);
        let create = rt.create(unique_id("sc-exec"), spec);
        let (mut c, first) = if notify {
            let (c, got) = tokio::join!(create, receive(&listener));
            let (state, fd) = got.unwrap();
            assert_eq!(state["state"]["status"], "creating", "{state}");
            (
                c.unwrap(),
                Some(tokio::spawn(answer_until_gone(fd, agent_answer))),
            )
        } else {
            (create.await.unwrap(), None)
        };
        c.start().await.unwrap();
        let mut process = corral::oci_spec::runtime::Process::default();
        process.set_args(Some(vec![
            "/probe".into(),
            "mkdir".into(),
            "/dev/shm/e".into(),
        ]));
        process.set_cwd("/".into());
        let exec = c.exec(process).stdout(corral::Stdio::piped());
        let mut p = if notify {
            let (p, got) = tokio::join!(exec.into_future(), receive(&listener));
            let p = p.unwrap();
            let (state, fd) = got.unwrap();
            // The exec'd process's own pid; the container's in `state`.
            assert_eq!(state["pid"], p.pid(), "{state}");
            assert_eq!(state["state"]["pid"], c.pid(), "{state}");
            assert_eq!(state["state"]["status"], "running", "{state}");
            assert_eq!(state["metadata"], "exec-meta", "{state}");
            tokio::spawn(answer_until_gone(fd, agent_answer));
            p
        } else {
            exec.await.unwrap()
        };
        let mut out = String::new();
        p.take_stdout()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert!(p.wait().await.unwrap().success());
        let want = if notify { libc::EXDEV } else { libc::EPERM };
        assert_eq!(
            out.trim(),
            want.to_string(),
            "exec'd mkdir (notify: {notify})"
        );
        c.kill(libc::SIGKILL).unwrap();
        c.wait().await.unwrap();
        c.delete().await.unwrap();
        if let Some(first) = first {
            first.await.unwrap().unwrap();
        }
    }
}

#[tokio::test]
async fn seccomp_notify_without_a_listening_agent_fails_create_and_leaves_nothing() {
    require_root();
    let _serial = serial().await;
    let tmp = TempDir::new("notify-gone");
    let before = child_count();
    let spec = with_seccomp(
        &["/probe"],
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": tmp.path().join("nobody.sock"),
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let err = runtime_in(&tmp)
        .create(unique_id("notify-gone"), spec)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("linux.seccomp.listenerPath"),
        "{err}"
    );
    assert_eq!(child_count(), before, "a child was left");
    assert_state_empty(&tmp);
}

/// The shape of docker's and podman's default profile: default
/// ERRNO(ENOSYS), about 370 names allowed on x86_64, x86 and x32, some
/// with argument rules.
fn default_shaped_profile(denied: &[&str]) -> serde_json::Value {
    let names: Vec<&str> = include_str!("../data/seccomp_names.txt")
        .lines()
        .filter(|n| !n.is_empty() && !denied.contains(n) && *n != "personality")
        .collect();
    assert!(names.len() > 300, "{} names", names.len());
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffffffffu64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]},
            {"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]
    })
}

#[tokio::test]
async fn seccomp_default_shaped_profile_loads_and_the_workload_runs() {
    require_root();
    let _serial = serial().await;
    // Real work under the profile: probe info walks /proc, reads files,
    // stats, and prints; mkdir is denied by a rule, fork allowed.
    let profile = default_shaped_profile(&["mkdir", "mkdirat"]);
    let info = probe_info(
        &runtime(),
        with_seccomp(&["/probe", "info"], profile.clone()),
    )
    .await
    .unwrap();
    assert_eq!(info["seccomp"], 2, "filter mode: {info}");
    let (status, out) = run_capture(
        &runtime(),
        with_seccomp(&["/probe", "mkdir", "/dev/shm/d"], profile.clone()),
    )
    .await
    .unwrap();
    assert!(status.success(), "{status}: {out}");
    assert_eq!(out.trim(), libc::EPERM.to_string());
    let (status, out) = run_capture(&runtime(), with_seccomp(&["/probe", "fork", "3"], profile))
        .await
        .unwrap();
    assert!(status.success(), "{status}: {out}");
    let forked: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(forked["started"], 3, "{forked}");
}
