//! Exit to wake-up.
//!
//! `exit-to-wake` isolates it: the container runs `stamp-exit` (no std, no
//! libc), which reads `CLOCK_MONOTONIC` (shared with the host: no time
//! namespace), writes it to its stdout (a memfd) and calls `exit_group`;
//! the awaiting task, on a tokio worker, reads the same clock as soon as
//! `wait()` returns. The difference is the exit path (the process's
//! teardown, the pidfd wake-up, `waitid`) plus the task's wake-up: what a
//! caller of `wait()` waits for. The zombie's release comes later, at
//! `delete` (see runtime/src/pidfd.rs).
//!
//! `exit-to-wake-no-hold` is the same with a runtime that holds no
//! containers' mount namespaces, whose teardown is then part of the exit.
//! `exit-to-wake-std-probe` runs `probe stamp-exit`, a std binary: the
//! kernel's teardown of its larger address space is part of its exit.
//!
//! Two upper bounds, kept for comparison: `sigkill-to-wake` (a running
//! container is sent SIGKILL through its pidfd; adds the kill's delivery)
//! and `stdin-eof-to-wake` (`cat` sees EOF and exits; adds a pipe wake-up
//! and a user-space exit).
//!
//! `cargo bench -p corral-benches --bench exit_wait` (root).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral_benches::{minimal_spec, next_id, require_root};
use criterion::Criterion;

/// Criterion's samples per bench, and so its calls of `iter_custom` once
/// warmed up.
const SAMPLES: usize = 50;

fn exit_wait(c: &mut Criterion) {
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    // The same without mount namespace holds: the namespace's teardown is
    // back in the exit (see `RuntimeBuilder::mount_ns_holds`).
    let no_hold = corral::Runtime::builder()
        .mount_ns_holds(0)
        .build()
        .expect("runtime");
    let spec = minimal_spec(&["/bin/sleep", "1000"]);
    let mut group = c.benchmark_group("exit_wait");
    group.sample_size(SAMPLES);
    let stamp = minimal_spec(&["/bin/stamp-exit"]);
    let std_stamp = minimal_spec(&["/probe", "stamp-exit"]);
    // Criterion's estimates are means over the iterations of a sample, so
    // a few exits that wait behind the kernel's background work (a v1
    // cgroup's release runs in a kworker on the CPU of the previous
    // `delete`) pull them up; every exit is also kept for its median. One
    // list per call: the last SAMPLES calls are the measurement's, the
    // earlier ones the warm-up's.
    let mut per_exit = Vec::new();
    for (name, rt, spec) in [
        ("exit-to-wake", &rt, &stamp),
        ("exit-to-wake-no-hold", &no_hold, &stamp),
        ("exit-to-wake-std-probe", &rt, &std_stamp),
    ] {
        let each = Arc::new(Mutex::new(Vec::new()));
        group.bench_function(name, |b| {
            b.to_async(&tokio)
                .iter_custom(|iters| stamped_exits(rt.clone(), spec.clone(), iters, each.clone()))
        });
        per_exit.push((name, each));
    }
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
    for (name, calls) in per_exit {
        let calls = calls.lock().expect("no panics while held");
        let measured = &calls[calls.len().saturating_sub(SAMPLES)..];
        let mut each: Vec<u64> = measured.iter().flatten().copied().collect();
        if each.is_empty() {
            continue; // filtered out
        }
        let [p50, p90, p99] =
            corral_benches::quantiles(&mut each, [0.5, 0.9, 0.99]).map(|ns| ns as f64 / 1000.0);
        println!(
            "exit_wait/{name}: per exit, {} measured exits: median {p50:.1} µs, p90 {p90:.1} µs, p99 {p99:.1} µs",
            each.len(),
        );
    }
}

/// `iters` containers running `spec` (a stamp, then exit), one after another; the
/// sum of their exit → wake-up times. Their times in ns are also pushed,
/// as one list, to `calls`.
async fn stamped_exits(
    rt: corral::Runtime,
    spec: corral::Spec,
    iters: u64,
    calls: Arc<Mutex<Vec<Vec<u64>>>>,
) -> Duration {
    // On a worker, as a service's task would be: criterion's `block_on`
    // would add a hop from the worker that sees the pidfd to the bench's
    // main thread.
    let timed = tokio::spawn(async move {
        let mut total = Duration::ZERO;
        let mut each = Vec::with_capacity(usize::try_from(iters).unwrap_or(0));
        for _ in 0..iters {
            // The stamp goes to a memfd: a pipe write would wake the
            // reader's thread inside the timed span.
            let stamp_fd = rustix::fs::memfd_create("stamp", rustix::fs::MemfdFlags::CLOEXEC)
                .expect("memfd_create");
            let for_child = stamp_fd.try_clone().expect("dup the memfd");
            let mut c = rt
                .create(next_id("stamp"), spec.clone())
                .stdout(corral::Stdio::Fd(for_child))
                .await
                .expect("create");
            c.start().await.expect("start");
            let status = c.wait().await.expect("wait");
            let woke = monotonic_ns();
            assert!(status.success(), "{status}");
            let mut buf = [0u8; 32];
            let n = rustix::io::pread(&stamp_fd, &mut buf, 0).expect("read the stamp");
            let text = std::str::from_utf8(&buf[..n]).expect("UTF-8 stamp");
            let exited: u64 = text.trim().parse().expect("a stamp in ns");
            total += Duration::from_nanos(woke - exited);
            each.push(woke - exited);
            c.delete().await.expect("delete");
        }
        calls.lock().expect("no panics while held").push(each);
        total
    });
    timed.await.expect("the timed task")
}

/// `CLOCK_MONOTONIC` in ns, the clock the stamps read.
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
