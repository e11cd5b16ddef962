//! Mount namespace holds (`RuntimeBuilder::mount_ns_holds`), in a test
//! binary of its own: it reads this process's fd table, which other tests'
//! runtimes would add to.

use std::os::unix::fs::MetadataExt;

use corral_tests::*;

/// The mount namespaces this process holds an fd of, as `mnt:[inode]`.
fn held_mount_namespaces() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("mnt:["))
        .collect()
}

fn mount_ns_of(pid: i32) -> String {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).unwrap();
    format!("mnt:[{}]", meta.ino())
}

/// A runtime holds the mount namespace of as many containers as its budget
/// says, each until the container's exit is reaped; `delete` returns once
/// the hold is closed, and none is left once the runtime and its blocking
/// tasks are gone.
#[test]
fn holds_follow_the_budget_and_none_outlives_the_runtime() {
    require_root();
    let tokio = own_tokio();
    let before = held_mount_namespaces();
    tokio.block_on(async {
        let rt = corral::Runtime::builder()
            .mount_ns_holds(2)
            .build()
            .unwrap();
        let mut live = Vec::new();
        for n in 0..3 {
            let mut c = rt
                .create(
                    unique_id(&format!("hold{n}")),
                    probe_spec(&["/probe", "pause"]),
                )
                .await
                .unwrap();
            c.start().await.unwrap();
            live.push(c);
        }
        let held = held_mount_namespaces();
        for (n, c) in live.iter().enumerate() {
            let ns = mount_ns_of(c.pid());
            assert_ne!(
                ns,
                mount_ns_of(std::process::id() as i32),
                "a new mount namespace"
            );
            assert_eq!(
                held.contains(&ns),
                n < 2,
                "container {n}: {ns} held? budget 2, holds {held:?}"
            );
        }
        // `delete` returns once the namespace is torn down: its fd is closed.
        for c in live {
            let ns = mount_ns_of(c.pid());
            c.kill(libc::SIGKILL).unwrap();
            assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
            c.delete().await.unwrap();
            let held = held_mount_namespaces();
            assert!(
                !held.contains(&ns),
                "{ns} still held after delete: {held:?}"
            );
        }
        // The exit of a held container is reported, and its status is right.
        let mut c = rt
            .create(unique_id("hold-exit"), probe_spec(&["/probe", "exit", "3"]))
            .await
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(c.wait().await.unwrap().code(), Some(3));
        c.delete().await.unwrap();
        drop(rt);
    });
    // Dropping the tokio runtime waits for its blocking tasks, the closer
    // among them.
    drop(tokio);
    let after: Vec<String> = held_mount_namespaces()
        .into_iter()
        .filter(|ns| !before.contains(ns))
        .collect();
    assert!(after.is_empty(), "mount namespace fds left open: {after:?}");
}

/// With no budget the runtime holds nothing.
#[test]
fn a_zero_budget_holds_no_namespace() {
    require_root();
    let tokio = own_tokio();
    tokio.block_on(async {
        let rt = corral::Runtime::builder()
            .mount_ns_holds(0)
            .build()
            .unwrap();
        let mut c = rt
            .create(unique_id("nohold"), probe_spec(&["/probe", "pause"]))
            .await
            .unwrap();
        c.start().await.unwrap();
        let ns = mount_ns_of(c.pid());
        assert!(
            !held_mount_namespaces().contains(&ns),
            "{ns} held with a budget of 0"
        );
        c.kill(libc::SIGKILL).unwrap();
        c.wait().await.unwrap();
        c.delete().await.unwrap();
    });
}
