//! What each namespace costs at start-up: create + start + wait + delete
//! of the static `true` (only /proc mounted), from a mount namespace alone
//! up to the default set and beyond it (+net, +user, +cgroup), each from
//! one runtime in the same run.
//!
//! `cargo bench -p corral-benches --bench namespaces` (root).

use std::time::Duration;

use corral::oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceType as Ns};
use corral_benches::{minimal_spec, require_root, run_to_end};
use criterion::{BenchmarkId, Criterion};

fn spec(namespaces: &[Ns]) -> corral::Spec {
    let mut spec = minimal_spec(&["/bin/true"]);
    let linux = spec.oci_mut().linux_mut().as_mut().expect("linux section");
    linux.set_namespaces(Some(
        namespaces
            .iter()
            .map(|t| {
                corral::oci_spec::runtime::LinuxNamespaceBuilder::default()
                    .typ(*t)
                    .build()
                    .expect("namespace")
            })
            .collect(),
    ));
    if namespaces.contains(&Ns::User) {
        // Identity-mapped: the rootfs stays readable and nothing is chowned.
        let map = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(0u32)
            .size(65536u32)
            .build()
            .expect("mapping");
        linux.set_uid_mappings(Some(vec![map]));
        linux.set_gid_mappings(Some(vec![map]));
    }
    spec
}

fn namespaces(c: &mut Criterion) {
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    let base = [Ns::Mount, Ns::Pid, Ns::Uts, Ns::Ipc];
    let sets: Vec<(&str, Vec<Ns>)> = vec![
        ("mnt", vec![Ns::Mount]),
        ("mnt+pid", vec![Ns::Mount, Ns::Pid]),
        ("mnt+pid+uts+ipc", base.to_vec()),
        ("+net", [&base[..], &[Ns::Network]].concat()),
        ("+user", [&base[..], &[Ns::User]].concat()),
        ("+cgroup", [&base[..], &[Ns::Cgroup]].concat()),
    ];
    let mut group = c.benchmark_group("namespaces");
    group
        .sample_size(40)
        .measurement_time(Duration::from_secs(5));
    for (name, set) in sets {
        let spec = spec(&set);
        group.bench_function(BenchmarkId::new("create-start-wait", name), |b| {
            b.to_async(&tokio)
                .iter(|| run_to_end(&rt, spec.clone(), "ns"))
        });
    }
    group.finish();
}

fn main() {
    require_root();
    let mut c = Criterion::default().configure_from_args();
    namespaces(&mut c);
    c.final_summary();
}
