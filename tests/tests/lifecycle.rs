//! A container starts, runs and is reaped through the library: exit codes,
//! signals, pid 1, hostname, the container's view of mounts and /proc, its
//! namespaces, and piped stdio.

use corral::Stdio;
use corral_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn exit_code_propagates() {
    require_root();
    let rt = runtime();
    let (status, _) = run_capture(&rt, probe_spec(&["/probe", "exit", "7"]))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(status.shell_code(), 7);
}

#[tokio::test]
async fn killing_by_signal_is_reported_as_that_signal() {
    require_root();
    let rt = runtime();
    let mut c = rt
        .create(unique_id("sig"), probe_spec(&["/bin/sleep", "100"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    c.kill(libc::SIGKILL).unwrap();
    let status = c.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(status.shell_code(), 137);
    c.delete().await.unwrap();
}

#[tokio::test]
async fn wait_may_be_awaited_from_many_tasks() {
    require_root();
    let rt = runtime();
    let mut c = rt
        .create(unique_id("waiters"), probe_spec(&["/probe", "exit", "3"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    let c = std::sync::Arc::new(c);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.wait().await.unwrap() })
        })
        .collect();
    for w in waiters {
        assert_eq!(w.await.unwrap().code(), Some(3));
    }
}

#[tokio::test]
async fn process_is_pid_1_and_sees_only_its_own_processes() {
    require_root();
    let info = probe_info(&runtime(), probe_spec(&["/probe", "info"]))
        .await
        .unwrap();
    assert_eq!(info["pid"], 1);
    assert_eq!(info["procs"], serde_json::json!([1]));
}

#[tokio::test]
async fn hostname_is_set_in_its_uts_namespace() {
    require_root();
    let mut spec = probe_spec(&["/probe", "info"]);
    spec.oci_mut().set_hostname(Some("box-7".into()));
    let info = probe_info(&runtime(), spec).await.unwrap();
    assert_eq!(info["hostname"], "box-7");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box-7");
}

#[tokio::test]
async fn host_mounts_are_invisible_and_none_leak_to_the_host() {
    require_root();
    let info = probe_info(&runtime(), probe_spec(&["/probe", "info"]))
        .await
        .unwrap();
    let mounts: Vec<&str> = info["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(mounts[0], "/", "{mounts:?}");
    for m in &mounts {
        assert!(
            [
                "/",
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys"
            ]
            .iter()
            .any(|ok| m == ok)
                || m.starts_with("/sys/fs/cgroup")
                || m.starts_with("/proc/")
                || m.starts_with("/sys/"),
            "unexpected mount {m} in {mounts:?}"
        );
    }
    assert!(
        !mounts
            .iter()
            .any(|m| m.starts_with("/work") || m.starts_with("/mnt")),
        "{mounts:?}"
    );
    assert!(host_mounts_under(shared_rootfs()).is_empty());
}

#[tokio::test]
async fn namespaces_differ_from_the_hosts() {
    require_root();
    let info = probe_info(&runtime(), probe_spec(&["/probe", "info"]))
        .await
        .unwrap();
    for ns in ["pid", "mnt", "uts", "ipc"] {
        assert_ne!(info["ns"][ns], host_ns(ns), "{ns}");
    }
    // Not asked for: shared with the host.
    assert_eq!(info["ns"]["net"], host_ns("net"));
}

#[tokio::test]
async fn piped_stdin_round_trips_through_cat() {
    require_root();
    let rt = runtime();
    let mut c = rt
        .create(unique_id("cat"), probe_spec(&["/bin/cat"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .await
        .unwrap();
    let mut stdin = c.take_stdin().unwrap();
    let mut stdout = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let payload = payload.clone();
        tokio::spawn(async move {
            stdin.write_all(&payload).await.unwrap();
            // Dropping stdin closes the pipe: cat sees EOF.
        })
    };
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert_eq!(c.wait().await.unwrap().code(), Some(0));
    assert_eq!(got, payload);
    c.delete().await.unwrap();
}

#[tokio::test]
async fn container_sees_only_stdio_fds() {
    require_root();
    let (status, out) = run_capture(&runtime(), probe_spec(&["/probe", "fds"]))
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(out.trim(), "[0,1,2]");
}

/// The container's own v1 `pids`/`freezer` directories (or its v2
/// directory on a pure v2 host), from `/proc/<pid>/cgroup`.
fn own_cgroup_dirs(pid: i32, id: &str) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let base = match controllers {
            "pids" | "freezer" => format!("/sys/fs/cgroup/{controllers}"),
            "" if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
                "/sys/fs/cgroup".to_owned()
            }
            _ => continue,
        };
        if path.contains(id) {
            dirs.push(std::path::PathBuf::from(format!("{base}{path}")));
        }
    }
    dirs
}

/// A dropped handle leaves no cgroup directory behind, even when its tokio
/// runtime shuts down before the task that reaps it ever runs (the end of
/// a `#[tokio::test]`, a service exiting): a current-thread runtime whose
/// `block_on` returns right after the drop never polls that task.
#[test]
fn a_dropped_container_leaves_no_cgroup_when_its_runtime_shuts_down_first() {
    require_root();
    let tokio = own_tokio();
    let id = unique_id("dropped");
    let dirs = tokio.block_on(async {
        let c = runtime()
            .create(id.clone(), probe_spec(&["/probe", "pause"]))
            .await
            .unwrap();
        let dirs = own_cgroup_dirs(c.pid(), &id);
        assert!(!dirs.is_empty(), "the container has cgroup directories");
        assert!(dirs.iter().all(|d| d.is_dir()), "{dirs:?}");
        drop(c);
        dirs
    });
    drop(tokio);
    for d in &dirs {
        assert!(!d.exists(), "{d:?} left behind");
    }
}

/// The cgroup directories a runtime makes ahead of its creates
/// (`RuntimeBuilder::cgroup_spares`, v1 hosts) are removed with it, and
/// the containers created meanwhile ran in directories of their own.
#[test]
fn spare_cgroup_sets_are_gone_when_the_runtime_is() {
    require_root();
    let tokio = own_tokio();
    // A parent of its own: other tests' runtimes keep spares under theirs.
    let group = unique_id("spares");
    let parents = tokio.block_on(async {
        let rt = runtime();
        let mut parents = Vec::new();
        for n in 0..4 {
            let id = unique_id(&format!("spare{n}"));
            let mut spec = probe_spec(&["/probe", "pause"]);
            spec.oci_mut()
                .linux_mut()
                .as_mut()
                .unwrap()
                .set_cgroups_path(Some(format!("/{group}/{id}").into()));
            let c = rt.create(id.clone(), spec).await.unwrap();
            let dirs = own_cgroup_dirs(c.pid(), &id);
            assert!(!dirs.is_empty(), "the container has cgroup directories");
            for d in &dirs {
                assert!(d.ends_with(&id), "{d:?} is named after the container");
            }
            parents.extend(dirs.iter().filter_map(|d| d.parent().map(|p| p.to_owned())));
            c.kill(libc::SIGKILL).unwrap();
            c.wait().await.unwrap();
            c.delete().await.unwrap();
            for d in &dirs {
                assert!(!d.exists(), "{d:?} removed at delete");
            }
        }
        parents
    });
    drop(tokio);
    let prefix = format!(".spare-{}-", std::process::id());
    for parent in &parents {
        let left: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "spares left behind: {left:?}");
    }
    // The group's directories, made as parents in every hierarchy.
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(hierarchy.path().join(&group));
    }
    let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(&group));
}

/// Once the workload runs, the host's root is gone from the container's
/// mount table (the init unmounts it after `pivot_root`): one mount at
/// `/`. Left attached, the host's root would be listed at `/` too,
/// stacked on the container's.
#[tokio::test]
async fn the_hosts_root_is_unmounted_before_the_workload_runs() {
    require_root();
    let rt = runtime();
    let (status, text) = run_capture(&rt, probe_spec(&["/probe", "read", "/proc/self/mountinfo"]))
        .await
        .unwrap();
    assert!(status.success(), "{status}: {text}");
    let roots = text
        .lines()
        .filter(|line| line.split(' ').nth(4) == Some("/"))
        .count();
    assert_eq!(roots, 1, "mounts at / in the container:\n{text}");
}

/// `/proc/<pid>/stat`'s state letter and start time, if the pid is taken.
fn state_and_start(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command, which is in parentheses and may hold anything.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((fields[0].chars().next()?, fields[19].parse().ok()?))
}

/// `wait()` reports the exit before the kernel releases the process: the
/// init stays a zombie (its pid taken) until `delete`, or until the
/// handle's drop.
#[test]
fn an_exited_init_is_a_zombie_until_delete_or_drop() {
    require_root();
    let tokio = own_tokio();
    let dropped = tokio.block_on(async {
        let rt = runtime();
        let mut exited = Vec::new();
        for n in 0..2 {
            let mut c = rt
                .create(
                    unique_id(&format!("zombie{n}")),
                    probe_spec(&["/probe", "exit", "0"]),
                )
                .await
                .unwrap();
            c.start().await.unwrap();
            assert!(c.wait().await.unwrap().success());
            let (state, start) = state_and_start(c.pid()).expect("the pid is still taken");
            assert_eq!(state, 'Z', "container {n} after wait");
            exited.push((c, start));
        }
        let (deleted, start) = exited.remove(0);
        let pid = deleted.pid();
        deleted.delete().await.unwrap();
        // Gone, or reused by another process since.
        let now = state_and_start(pid);
        assert!(
            now.is_none_or(|(_, t)| t != start),
            "pid {pid} after delete: {now:?}"
        );
        let (dropped, start) = exited.remove(0);
        let pid = dropped.pid();
        drop(dropped);
        (pid, start)
    });
    // The drop's leftovers run in a task; the runtime's shutdown finishes
    // whatever is left of them, blocking.
    drop(tokio);
    let (pid, start) = dropped;
    let now = state_and_start(pid);
    assert!(
        now.is_none_or(|(_, t)| t != start),
        "pid {pid} after drop: {now:?}"
    );
}
