//! Runtime memory per live container: RSS of this process (the runtime)
//! before and after holding N sleeping containers, divided by N, for N =
//! 1,000 and 10,000. Not a timing, so no criterion: it prints its figures.
//! Each live container holds one fd here (its pidfd): 10,000 fit under
//! the 20,000 hard limit of this project's machines.
//!
//! `cargo bench -p corral-benches --bench memory` (root).

use corral_benches::{minimal_spec, next_id, require_root};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

async fn measure(rt: &corral::Runtime, n: usize) -> f64 {
    let spec = minimal_spec(&["/bin/sleep", "100000"]);
    let before = rss_kib();
    let mut live = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = rt
            .create(next_id("mem"), spec.clone())
            .await
            .expect("create");
        c.start().await.expect("start");
        live.push(c);
    }
    let after = rss_kib();
    let fds = std::fs::read_dir("/proc/self/fd").expect("fds").count();
    for c in &live {
        c.kill(libc::SIGKILL).expect("kill");
    }
    for c in live {
        c.wait().await.expect("wait");
        c.delete().await.expect("delete");
    }
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "memory/{n}: runtime RSS {before} KiB -> {after} KiB, {per:.0} bytes per live container, {fds} fds open"
    );
    per
}

fn main() {
    require_root();
    let tokio = corral_benches::tokio_runtime();
    tokio.block_on(async {
        let rt = corral::Runtime::builder().build().expect("runtime");
        // Warm: the init memfd and the allocator's first arenas.
        measure(&rt, 100).await;
        for n in [1_000, 10_000] {
            measure(&rt, n).await;
        }
    });
}
