//! 500 containers at once from one runtime: all exit 0, and afterwards
//! nothing is left: no fds, no children, no mounts on the host.
//! Its own test binary, so no other test's fds or children are counted.

use corral_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_containers_leave_nothing_behind() {
    require_root();
    let rt = runtime();
    // Warm the runtime (seals the init memfd, which it keeps).
    let (status, _) = run_capture(&rt, probe_spec(&["/bin/true"])).await.unwrap();
    assert!(status.success());
    let fds_before = open_fds();
    let children_before = child_count();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move {
                let mut c = rt
                    .create(unique_id("scale"), probe_spec(&["/bin/true"]))
                    .await?;
                c.start().await?;
                let status = c.wait().await?;
                c.delete().await?;
                anyhow::Ok(status)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(status) if status.success() => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(open_fds(), fds_before, "fds leaked");
    assert_eq!(child_count(), children_before, "children left");
    assert!(host_mounts_under(shared_rootfs()).is_empty());
}
