//! Exit to wake-up.
//!
//! `exit-to-wake` isolates it: the container runs `probe stamp-exit`, which
//! reads `CLOCK_MONOTONIC` (shared with the host: no time namespace), writes
//! it to its stdout pipe and calls `exit_group`; the awaiting task reads the
//! same clock as soon as `wait()` returns. The difference is the exit path
//! (the process's teardown, the pid namespace's, the pidfd wake-up, the
//! reap) plus the task's wake-up: what a caller of `wait()` waits for.
//!
//! Two upper bounds, kept for comparison: `sigkill-to-wake` (a running
//! container is sent SIGKILL through its pidfd; adds the kill's delivery)
//! and `stdin-eof-to-wake` (`cat` sees EOF and exits; adds a pipe wake-up
//! and a user-space exit).
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
    let stamp = minimal_spec(&["/probe", "stamp-exit"]);
    group.bench_function("exit-to-wake", |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let (rt, spec) = (rt.clone(), stamp.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut c = rt
                        .create(next_id("stamp"), spec.clone())
                        .stdout(corral::Stdio::piped())
                        .await
                        .expect("create");
                    let mut out = c.take_stdout().expect("piped stdout");
                    c.start().await.expect("start");
                    let status = c.wait().await.expect("wait");
                    let woke = monotonic_ns();
                    let mut text = String::new();
                    tokio::io::AsyncReadExt::read_to_string(&mut out, &mut text)
                        .await
                        .expect("read the stamp");
                    assert!(status.success(), "{status}");
                    let exited: u64 = text.trim().parse().expect("a stamp in ns");
                    total += Duration::from_nanos(woke - exited);
                    c.delete().await.expect("delete");
                }
                total
            }
        })
    });
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

/// `CLOCK_MONOTONIC` in ns, the clock `probe stamp-exit` reads.
fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(ts.tv_sec).expect("positive") * 1_000_000_000
        + u64::try_from(ts.tv_nsec).expect("positive")
}

fn main() {
    require_root();
    let mut c = Criterion::default().configure_from_args();
    exit_wait(&mut c);
    c.final_summary();
}
