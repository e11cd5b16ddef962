//! Exit to wake-up: a running container is sent SIGKILL through its pidfd
//! and the time until `wait()` returns is measured. This bounds the exit →
//! wake-up latency from above (it includes delivering the kill and tearing
//! down the pid namespace).
//!
//! `cargo bench -p corral-benches --bench exit_wait` (root).

use std::time::{Duration, Instant};

use corral_benches::{minimal_spec, next_id, require_root};
use criterion::Criterion;

fn exit_wait(c: &mut Criterion) {
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    let spec = minimal_spec(&["/bin/sleep", "1000"]);
    let mut group = c.benchmark_group("exit_wait");
    group.sample_size(50);
    group.bench_function("sigkill-to-wake", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let (rt, spec) = (rt.clone(), spec.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut c = rt
                        .create(next_id("exit"), spec.clone())
                        .await
                        .expect("create");
                    c.start().await.expect("start");
                    let t = Instant::now();
                    c.kill(libc::SIGKILL).expect("kill");
                    let status = c.wait().await.expect("wait");
                    total += t.elapsed();
                    assert_eq!(status.signal(), Some(libc::SIGKILL));
                    c.delete().await.expect("delete");
                }
                total
            }
        })
    });
    // A process that exits on its own: `cat` sees EOF when the bench
    // closes its stdin, exits 0, and `wait()` wakes. Timed from the close:
    // the pipe wake-up, the exit, the pid namespace's teardown, the pidfd
    // wake-up and the reap.
    let cat = minimal_spec(&["/bin/cat"]);
    group.bench_function("stdin-eof-to-wake", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let (rt, spec) = (rt.clone(), cat.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut c = rt
                        .create(next_id("eof"), spec.clone())
                        .stdin(corral::Stdio::piped())
                        .await
                        .expect("create");
                    let stdin = c.take_stdin().expect("piped stdin");
                    c.start().await.expect("start");
                    let t = Instant::now();
                    drop(stdin);
                    let status = c.wait().await.expect("wait");
                    total += t.elapsed();
                    assert!(status.success());
                    c.delete().await.expect("delete");
                }
                total
            }
        })
    });
    group.finish();
}

fn main() {
    require_root();
    let mut c = Criterion::default().configure_from_args();
    exit_wait(&mut c);
    c.final_summary();
}
