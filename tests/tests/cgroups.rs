//! Per-container cgroups on this host, for real: limits that the kernel
//! enforces (memory → OOM kill reported by `wait()`, pids → fork fails,
//! cpu quota → throttled periods, devices → EPERM), pause and resume,
//! stats, update, and removal on every path. Then the cgroup v2 code on
//! the hybrid host's controller-less `unified` mount: placement by
//! `CLONE_INTO_CGROUP`, freeze and thaw, kill and removal.
//!
//! Each test has its own container id, hence its own cgroup.

use std::path::{Path, PathBuf};

use corral::{Container, Stdio};
use corral_tests::*;
use tokio::io::AsyncReadExt;

/// `probe_spec(args)` with `linux.resources` from JSON.
fn with_resources(args: &[&str], resources: serde_json::Value) -> corral::Spec {
    let mut spec = probe_spec(args);
    let r: corral::oci_spec::runtime::LinuxResources =
        serde_json::from_value(resources).expect("valid linux.resources JSON");
    spec.oci_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(r));
    spec
}

/// The v1 directories a container `id` with a default cgroupsPath gets:
/// `<hierarchy>/<our cgroup>/corral/<id>` for each controller hierarchy.
fn default_v1_dirs(id: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    own.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            if ctrls.is_empty() || ctrls.starts_with("name=") {
                return None;
            }
            let mount = Path::new("/sys/fs/cgroup").join(ctrls);
            mount.is_dir().then(|| {
                mount
                    .join(path.trim_start_matches('/'))
                    .join("corral")
                    .join(id)
            })
        })
        .collect()
}

fn dirs_of(c: &Container) -> Vec<PathBuf> {
    c.cgroup()
        .expect("the container has a cgroup")
        .dirs
        .iter()
        .map(|d| d.path.clone())
        .collect()
}

fn assert_gone(dirs: &[PathBuf]) {
    for d in dirs {
        assert!(!d.exists(), "{d:?} remains");
    }
}

#[tokio::test]
async fn memory_limit_oom_kills_an_allocator_and_wait_says_so() {
    require_root();
    let rt = runtime();
    let spec = with_resources(
        &["/probe", "alloc", "512"],
        serde_json::json!({"memory": {"limit": 32 << 20, "swap": 32 << 20}}),
    );
    let mut c = rt.create(unique_id("oom"), spec).await.unwrap();
    let dirs = dirs_of(&c);
    c.start().await.unwrap();
    let status = c.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(status.oom_killed(), "{status}");
    assert!(c.stats().unwrap().memory.oom_kills >= 1);
    c.delete().await.unwrap();
    assert_gone(&dirs);
}

#[tokio::test]
async fn an_allocator_under_its_limit_is_not_reported_as_oom_killed() {
    require_root();
    let rt = runtime();
    let spec = with_resources(
        &["/probe", "alloc", "8"],
        serde_json::json!({"memory": {"limit": 64 << 20}}),
    );
    let (status, _) = run_capture(&rt, spec).await.unwrap();
    assert!(status.success(), "{status}");
    assert!(!status.oom_killed());
}

#[tokio::test]
async fn pids_limit_makes_fork_fail_inside() {
    require_root();
    let rt = runtime();
    let spec = with_resources(
        &["/probe", "fork", "20"],
        serde_json::json!({"pids": {"limit": 5}}),
    );
    let (status, out) = run_capture(&rt, spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let started = v["started"].as_i64().unwrap();
    assert!((1..20).contains(&started), "{v}");
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test]
async fn cpu_quota_throttles_a_busy_loop() {
    require_root();
    let rt = runtime();
    // 10% of one cpu; a 0.3 s busy loop spans many 10 ms periods.
    let spec = with_resources(
        &["/probe", "spin", "0.3"],
        serde_json::json!({"cpu": {"quota": 1000, "period": 10000}}),
    );
    let mut c = rt.create(unique_id("cpu"), spec).await.unwrap();
    c.start().await.unwrap();
    assert!(c.wait().await.unwrap().success());
    let stats = c.stats().unwrap();
    assert!(stats.cpu.throttling.throttled_periods > 0, "{stats:?}");
    assert!(stats.cpu.throttling.throttled_time > 0, "{stats:?}");
    c.delete().await.unwrap();
}

#[tokio::test]
async fn devices_deny_makes_dev_null_unopenable() {
    require_root();
    let rt = runtime();
    let rules = serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]});
    let spec = with_resources(&["/probe", "read", "/dev/null"], rules.clone());
    let mut c = rt
        .create(unique_id("dev"), spec)
        .stderr(Stdio::piped())
        .await
        .unwrap();
    let mut err = c.take_stderr().unwrap();
    c.start().await.unwrap();
    let mut text = String::new();
    err.read_to_string(&mut text).await.unwrap();
    assert_eq!(c.wait().await.unwrap().code(), Some(1), "{text}");
    assert!(text.contains("Operation not permitted"), "{text}");
    c.delete().await.unwrap();
    // The default devices stay usable under a deny-all rule.
    let spec = with_resources(
        &["/probe", "read", "/dev/zero"],
        serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"}]}),
    );
    let spec = {
        let mut s = spec;
        s.oci_mut()
            .process_mut()
            .as_mut()
            .unwrap()
            .set_args(Some(vec![
                "/probe".into(),
                "read".into(),
                "/dev/null".into(),
            ]));
        s
    };
    let (status, _) = run_capture(&rt, spec).await.unwrap();
    assert!(status.success(), "{status}");
}

/// Pause freezes the counter; resume lets it go on. The frozen check does
/// not depend on timing: once `pause` returns every task is frozen, so
/// after the pipe is drained nothing can be written to it; the test then
/// does a bounded amount of its own work (yields to the reactor many
/// times, so that any readiness would be seen) and finds the pipe still
/// empty.
/// Waits (on readiness, which tokio's try_read clears on WouldBlock)
/// until bytes arrive.
async fn wait_for_bytes(out: &tokio::net::unix::pipe::Receiver, buf: &mut [u8]) {
    loop {
        out.readable().await.unwrap();
        match out.try_read(buf) {
            Ok(0) => panic!("the counter closed its stdout"),
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("read the counter: {e}"),
        }
    }
}

async fn pause_and_resume(rt: &corral::Runtime) {
    // A pipe of the test's own, read directly: the runtime's piped output
    // may still deliver bytes it read before the freeze (io_uring reads
    // complete asynchronously), which would look like progress.
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let out = tokio::net::unix::pipe::Receiver::from_owned_fd(read).unwrap();
    let mut c = rt
        .create(unique_id("pause"), probe_spec(&["/probe", "count"]))
        .stdout(Stdio::Fd(write))
        .await
        .unwrap();
    c.start().await.unwrap();
    let mut buf = vec![0u8; 65536];
    let drain = |out: &tokio::net::unix::pipe::Receiver, buf: &mut [u8]| {
        let mut total = 0;
        loop {
            // read(2) itself, not tokio's try_read: that answers from the
            // reactor's cached readiness and can miss bytes in the pipe.
            match rustix::io::read(std::os::fd::AsFd::as_fd(out), &mut *buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(rustix::io::Errno::AGAIN) => return total,
                Err(e) => panic!("read the counter: {e}"),
            }
        }
    };
    wait_for_bytes(&out, &mut buf).await;
    c.pause().await.unwrap();
    // Frozen: whatever is in the pipe now is all there will be.
    let _ = drain(&out, &mut buf);
    for _ in 0..1000 {
        tokio::task::yield_now().await;
        assert_eq!(
            drain(&out, &mut buf),
            0,
            "the counter advanced while paused"
        );
    }
    c.resume().await.unwrap();
    // The counter continues: bytes arrive again (a hang here fails the
    // test by the harness's timeout, not by a timed assertion).
    wait_for_bytes(&out, &mut buf).await;
    let dirs = dirs_of(&c);
    c.force_delete().await.unwrap();
    assert_gone(&dirs);
}

#[tokio::test]
async fn pause_stops_the_counter_and_resume_continues() {
    require_root();
    pause_and_resume(&runtime()).await;
}

#[tokio::test]
async fn a_paused_container_can_be_force_deleted() {
    require_root();
    let rt = runtime();
    let mut c = rt
        .create(unique_id("pkill"), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    c.pause().await.unwrap();
    let dirs = dirs_of(&c);
    c.force_delete().await.unwrap();
    assert_gone(&dirs);
}

#[tokio::test]
async fn stats_report_nonzero_usage() {
    require_root();
    let rt = runtime();
    let spec = with_resources(
        &["/probe", "spin", "0.1"],
        serde_json::json!({"pids": {"limit": 50}}),
    );
    let mut c = rt.create(unique_id("stats"), spec).await.unwrap();
    let live = c.stats().unwrap();
    assert_eq!(live.pids.current, 1, "{live:?}");
    assert_eq!(live.pids.limit, 50);
    assert!(live.memory.usage.usage > 0, "{live:?}");
    c.start().await.unwrap();
    c.wait().await.unwrap();
    let s = c.stats().unwrap();
    // cpu time, not wall time: the spin shares two cores with the rest.
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert!(s.cpu.usage.user > 0, "{s:?}");
    c.delete().await.unwrap();
}

#[tokio::test]
async fn update_changes_limits_of_a_running_container() {
    require_root();
    let rt = runtime();
    let mut c = rt
        .create(unique_id("upd"), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    let r: corral::oci_spec::runtime::LinuxResources = serde_json::from_value(
        serde_json::json!({"memory": {"limit": 100 << 20}, "pids": {"limit": 7}}),
    )
    .unwrap();
    c.update(&r).unwrap();
    let s = c.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 100 << 20);
    assert_eq!(s.pids.limit, 7);
    let bad: corral::oci_spec::runtime::LinuxResources =
        serde_json::from_value(serde_json::json!({"memory": {"limit": -5}})).unwrap();
    let e = c.update(&bad).unwrap_err();
    assert!(
        matches!(&e, corral::Error::InvalidSpec { field, .. } if field == "linux.resources.memory.limit"),
        "{e}"
    );
    c.force_delete().await.unwrap();
}

#[tokio::test]
async fn invalid_limit_is_refused_naming_the_field_and_makes_nothing() {
    require_root();
    let rt = runtime();
    let id = unique_id("inval");
    let spec = with_resources(&["/probe"], serde_json::json!({"memory": {"limit": 0}}));
    let e = rt.create(&id, spec).await.unwrap_err();
    assert!(
        matches!(&e, corral::Error::InvalidSpec { field, .. } if field == "linux.resources.memory.limit"),
        "{e}"
    );
    assert_gone(&default_v1_dirs(&id));
}

#[tokio::test]
async fn absolute_cgroups_path_is_used_and_removed() {
    require_root();
    let rt = runtime();
    let id = unique_id("abs");
    let mut spec = probe_spec(&["/probe", "read", "/proc/self/cgroup"]);
    spec.oci_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_cgroups_path(Some(format!("/corral-test/{id}").into()));
    let mut c = rt.create(&id, spec).stdout(Stdio::piped()).await.unwrap();
    let dirs = dirs_of(&c);
    assert!(dirs.contains(&PathBuf::from(format!(
        "/sys/fs/cgroup/memory/corral-test/{id}"
    ))));
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).await.unwrap();
    c.wait().await.unwrap();
    // Placed before the exec of its init: the workload is in it.
    assert!(
        text.contains(&format!(":memory:/corral-test/{id}")),
        "{text}"
    );
    assert!(text.contains(&format!(":pids:/corral-test/{id}")), "{text}");
    c.delete().await.unwrap();
    assert_gone(&dirs);
}

/// Without a resident init, a v1 container's init is cloned first and
/// joins its cgroup (made meanwhile) before it reads its spec, and a
/// cgroup namespace is unshared only once it is placed: the workload is in
/// every hierarchy's container cgroup, and with a namespace it sees that
/// cgroup as its root.
#[tokio::test]
async fn an_exec_init_joins_its_v1_cgroup_made_while_it_starts() {
    require_root();
    let rt = corral::Runtime::builder()
        .resident_init(false)
        .build()
        .expect("build a runtime");
    for cgroupns in [false, true] {
        let id = unique_id("late");
        let mut spec = with_resources(
            &["/probe", "read", "/proc/self/cgroup"],
            serde_json::json!({"pids": {"limit": 64}}),
        );
        spec.oci_mut()
            .linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some(format!("/corral-test/{id}").into()));
        if cgroupns {
            add_namespace(
                &mut spec,
                corral::oci_spec::runtime::LinuxNamespaceType::Cgroup,
                None,
            );
        }
        let mut c = rt.create(&id, spec).stdout(Stdio::piped()).await.unwrap();
        let dirs = dirs_of(&c);
        let pids_max =
            std::fs::read_to_string(format!("/sys/fs/cgroup/pids/corral-test/{id}/pids.max"));
        assert_eq!(pids_max.unwrap().trim(), "64");
        let mut out = c.take_stdout().unwrap();
        c.start().await.unwrap();
        let mut text = String::new();
        out.read_to_string(&mut text).await.unwrap();
        assert!(c.wait().await.unwrap().success());
        for ctrl in ["memory", "pids", "cpu,cpuacct", "freezer"] {
            let want = if cgroupns {
                format!(":{ctrl}:/\n")
            } else {
                format!(":{ctrl}:/corral-test/{id}\n")
            };
            // cpu and cpuacct may be mounted apart.
            let want_split = want.replace("cpu,cpuacct", "cpu");
            assert!(
                text.contains(&want) || text.contains(&want_split),
                "cgroupns {cgroupns}: no {want:?} in {text}"
            );
        }
        c.delete().await.unwrap();
        assert_gone(&dirs);
    }
}

#[tokio::test]
async fn a_dropped_container_leaves_no_cgroup() {
    require_root();
    let rt = runtime();
    let id = unique_id("drop");
    let mut c = rt
        .create(&id, probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(c.pid()).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let dirs = dirs_of(&c);
    drop(c);
    // The reap task removes the cgroup right after the exit; yield to it.
    tokio::task::spawn_blocking(move || {
        let mut pfd = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut pfd, None).unwrap();
    })
    .await
    .unwrap();
    for _ in 0..100 {
        if dirs.iter().all(|d| !d.exists()) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_gone(&dirs);
}

#[tokio::test]
async fn no_cgroup_dir_remains_after_200_cycles_with_50_failed_creates() {
    require_root();
    let rt = runtime();
    let mut ids = Vec::new();
    for i in 0..200 {
        let id = unique_id("cycle");
        ids.push(id.clone());
        if i % 4 == 0 {
            let e = rt
                .create(&id, probe_spec(&["/no/such/program"]))
                .await
                .unwrap_err();
            assert!(e.init_error().is_some(), "{e}");
        } else {
            let mut c = rt.create(&id, probe_spec(&["/bin/true"])).await.unwrap();
            c.start().await.unwrap();
            assert!(c.wait().await.unwrap().success());
            c.delete().await.unwrap();
        }
    }
    for id in &ids {
        assert_gone(&default_v1_dirs(id));
    }
}

// ---------------------------------------------------------------------------
// cgroup v2, for real, on the hybrid host's `unified` mount.

const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn v2_runtime() -> Option<corral::Runtime> {
    let probe = Path::new(UNIFIED).join("cgroup.procs");
    if !probe.exists() {
        return None;
    }
    Some(
        corral::Runtime::builder()
            .cgroup_v2_root(UNIFIED)
            .build()
            .expect("build a v2 runtime"),
    )
}

#[tokio::test]
async fn v2_places_the_child_with_clone_into_cgroup_and_removes_it() {
    require_root();
    let Some(rt) = v2_runtime() else {
        skip_unless!(
            "cgroup2 mount at /sys/fs/cgroup/unified",
            Err::<(), _>("absent")
        );
        return;
    };
    let id = unique_id("v2");
    let mut c = rt
        .create(&id, probe_spec(&["/probe", "read", "/proc/self/cgroup"]))
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let dir = PathBuf::from(format!("{UNIFIED}/corral/{id}"));
    assert_eq!(dirs_of(&c), std::slice::from_ref(&dir));
    // Created straight into it: the init is there before it ever ran.
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), c.pid().to_string());
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).await.unwrap();
    assert!(
        text.lines().any(|l| l == format!("0::/corral/{id}")),
        "{text}"
    );
    assert!(c.wait().await.unwrap().success());
    let s = c.stats().unwrap();
    assert!(s.cpu.usage.total > 0, "{s:?}");
    c.delete().await.unwrap();
    assert!(!dir.exists());
}

#[tokio::test]
async fn v2_pause_stops_the_counter_and_resume_continues() {
    require_root();
    let Some(rt) = v2_runtime() else {
        skip_unless!(
            "cgroup2 mount at /sys/fs/cgroup/unified",
            Err::<(), _>("absent")
        );
        return;
    };
    pause_and_resume(&rt).await;
}

#[tokio::test]
async fn v2_kill_of_a_frozen_container_and_removal() {
    require_root();
    let Some(rt) = v2_runtime() else {
        skip_unless!(
            "cgroup2 mount at /sys/fs/cgroup/unified",
            Err::<(), _>("absent")
        );
        return;
    };
    let mut c = rt
        .create(unique_id("v2kill"), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    c.pause().await.unwrap();
    let dirs = dirs_of(&c);
    c.force_delete().await.unwrap();
    assert_gone(&dirs);
}

#[tokio::test]
async fn v2_device_program_denies_dev_null_and_keeps_the_defaults() {
    require_root();
    let Some(rt) = v2_runtime() else {
        skip_unless!(
            "cgroup2 mount at /sys/fs/cgroup/unified",
            Err::<(), _>("absent")
        );
        return;
    };
    let read = |path: &str, rules: serde_json::Value| {
        let rt = rt.clone();
        let spec = with_resources(&["/probe", "read", path], rules);
        async move {
            let id = unique_id("v2dev");
            let mut c = rt
                .create(&id, spec)
                .stderr(Stdio::piped())
                .stdout(Stdio::null())
                .await
                .unwrap();
            let mut err = c.take_stderr().unwrap();
            c.start().await.unwrap();
            let mut text = String::new();
            err.read_to_string(&mut text).await.unwrap();
            let code = c.wait().await.unwrap().code();
            c.delete().await.unwrap();
            assert!(!Path::new(&format!("{UNIFIED}/corral/{id}")).exists());
            (code, text)
        }
    };
    let deny_null = serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]});
    let (code, text) = read("/dev/null", deny_null).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Operation not permitted"), "{text}");
    // Under a deny-all rule alone the default devices stay usable.
    let deny_all = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
    let (code, text) = read("/dev/null", deny_all).await;
    assert_eq!(code, Some(0), "{text}");
}

/// The `cgroup` mount (runc's options, read-only) shows the container's own
/// cgroup, read-only, and the container's root stays the first entry of its
/// mount table; on a v1 host whose kernel can mount into a detached tree the
/// runtime builds that mount itself (`cgroup_tree`), elsewhere the init
/// does.
#[tokio::test]
async fn the_cgroup_mount_shows_the_containers_own_limit_read_only() {
    require_root();
    let rt = runtime();
    let limit = serde_json::json!({"memory": {"limit": 16_777_216}});
    let file = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let (status, text) = run_capture(
        &rt,
        with_resources(&["/probe", "read", file], limit.clone()),
    )
    .await
    .unwrap();
    assert!(status.success(), "{status}: {text}");
    assert_eq!(text.trim(), "16777216", "{file}");
    let (status, text) = run_capture(
        &rt,
        with_resources(&["/probe", "mkdir", "/sys/fs/cgroup/x"], limit.clone()),
    )
    .await
    .unwrap();
    assert!(status.success(), "{status}: {text}");
    assert_eq!(
        text.trim(),
        libc::EROFS.to_string(),
        "mkdir under the cgroup mount"
    );
    let (status, text) = run_capture(
        &rt,
        with_resources(&["/probe", "read", "/proc/self/mountinfo"], limit),
    )
    .await
    .unwrap();
    assert!(status.success(), "{status}: {text}");
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(first.split(' ').nth(4), Some("/"), "first mount: {first}");
}

/// `delete` kills every process left in any of the container's cgroup
/// directories, even one that is in a single hierarchy's directory only (a
/// host process moved there; v1 lists one directory first and the others
/// only when a directory stays busy).
#[tokio::test]
async fn delete_kills_a_process_left_in_one_hierarchy_only() {
    require_root();
    let rt = runtime();
    let id = unique_id("onehier");
    let mut c = rt
        .create(&id, probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    let dirs = dirs_of(&c);
    // The last directory: v1 lists the first one at delete.
    let last = dirs.last().unwrap().clone();
    let mut host = std::process::Command::new(corral_testbins::bin_path("sleep"))
        .arg("1000")
        .spawn()
        .unwrap();
    std::fs::write(last.join("cgroup.procs"), host.id().to_string()).unwrap();
    c.kill(libc::SIGKILL).unwrap();
    c.wait().await.unwrap();
    c.delete().await.unwrap();
    let status = host.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert_gone(&dirs);
}
