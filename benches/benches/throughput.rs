//! Containers per second: 1,000 create+start+wait+delete cycles of the
//! static `true` ({pid,mnt,uts,ipc}, only /proc mounted) from one runtime
//! at concurrency 1, 8, 32 and 128, every one required to succeed.
//!
//! `cargo bench -p corral-benches --bench throughput` (root).

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_benches::{minimal_spec, require_root, run_to_end};
use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::sync::Semaphore;

const CONTAINERS: u64 = 1000;

async fn batch(rt: &corral::Runtime, spec: &corral::Spec, concurrency: usize) -> Duration {
    let gate = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONTAINERS)
        .map(|_| {
            let (rt, spec, gate) = (rt.clone(), spec.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.expect("gate open");
                run_to_end(&rt, spec, "tp").await;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("no container failed");
    }
    start.elapsed()
}

fn throughput(c: &mut Criterion) {
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    let spec = minimal_spec(&["/bin/true"]);
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(CONTAINERS));
    for concurrency in [1usize, 8, 32, 128] {
        group.bench_function(BenchmarkId::new("library", concurrency), |b| {
            b.to_async(&tokio).iter_custom(|iters| {
                let (rt, spec) = (rt.clone(), spec.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += batch(&rt, &spec, concurrency).await;
                    }
                    total
                }
            })
        });
    }
    group.finish();
}

fn main() {
    require_root();
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
