//! Spawn latency against the parent's resident memory: create + start +
//! wait of the static `true` ({pid,mnt,uts,ipc}, only /proc mounted) from a
//! process holding 16 MiB and then 1 GiB of touched heap. A fork-style
//! clone copies the parent's page tables, so its cost grows with RSS; the
//! target is the 1 GiB figure within 10% of the 16 MiB one.
//!
//! `cargo bench -p corral-benches --bench parent_rss` (root).

use std::time::Duration;

use corral_benches::{minimal_spec, require_root};
use criterion::{BenchmarkId, Criterion};

fn parent_rss(c: &mut Criterion) {
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    let spec = minimal_spec(&["/bin/true"]);
    let mut group = c.benchmark_group("parent_rss");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(6));
    let mut ballast: Vec<u8> = Vec::new();
    for mib in [16usize, 1024] {
        // Touch every page so that it is resident and mapped.
        ballast.resize(mib << 20, 1);
        for page in ballast.chunks_mut(4096) {
            page[0] = page[0].wrapping_add(1);
        }
        group.bench_function(
            BenchmarkId::new("create-start-wait", format!("{mib}MiB")),
            |b| {
                b.to_async(&tokio).iter(|| async {
                    let mut c = rt
                        .create(corral_benches::next_id("rss"), spec.clone())
                        .await
                        .expect("create");
                    c.start().await.expect("start");
                    assert!(c.wait().await.expect("wait").success());
                    c.delete().await.expect("delete");
                })
            },
        );
    }
    std::hint::black_box(&ballast);
    group.finish();
}

fn main() {
    require_root();
    let mut c = Criterion::default().configure_from_args();
    parent_rss(&mut c);
    c.final_summary();
}
