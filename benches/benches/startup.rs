//! Start-up latency: create + start + wait of the static `true` with pid,
//! mount, uts and ipc namespaces, through the library and through the
//! `corral run` command, beside `runc run` and `crun run` of the very same
//! bundle in the same run.
//!
//! `cargo bench -p corral-benches --bench startup` (root; runc and crun
//! from `bash scripts/setup.sh`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use corral_benches::{make_bundle, next_id, reexec_in_private_mounts, require_root, run_to_end};
use criterion::{BenchmarkId, Criterion};

/// Runs `<runtime> --root <root> run --bundle <bundle> <id>`; panics on failure.
fn run_cli(runtime: &Path, root: &Path, bundle: &Path, prefix: &str) {
    let status = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(next_id(prefix))
        .stdin(Stdio::null())
        .status()
        .expect("spawn runtime");
    assert!(status.success(), "{runtime:?} run failed: {status}");
}

fn corral_cli() -> std::path::PathBuf {
    // target/release/deps/startup-xxxx -> target/release/corral
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("corral");
    assert!(
        path.exists(),
        "{path:?} missing: cargo build --release -p corral-cli first"
    );
    path
}

fn startup(c: &mut Criterion) {
    let tmp = std::env::temp_dir().join(format!("corral-bench-startup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let bundle = make_bundle(&tmp, &["/bin/true"]);
    let roots = tmp.join("roots");
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    let spec = corral::Spec::from_bundle(&bundle).expect("spec");

    let mut group = c.benchmark_group("startup");
    group
        .sample_size(60)
        .measurement_time(Duration::from_secs(8));
    let ns = "pid-mnt-uts-ipc";
    group.bench_function(BenchmarkId::new("corral-lib", ns), |b| {
        b.to_async(&tokio)
            .iter(|| run_to_end(&rt, spec.clone(), "lib"))
    });
    // What a test farm sees: the create happened ahead of time, in the
    // pool's refill task (which competes for the same two cores).
    let pool = tokio.block_on(async {
        let pool = rt.pool(spec.clone(), 4);
        pool.filled().await;
        pool
    });
    // Timed: taking a parked container until `start` returns (the
    // workload has exec'd). Its exit and delete happen outside the timing.
    // Every start's own duration, for the per-start median the target
    // names (criterion's estimates are over samples of many starts).
    let each = std::sync::Mutex::new(Vec::new());
    group.bench_function(BenchmarkId::new("corral-lib-pool-start", ns), |b| {
        b.to_async(&tokio).iter_custom(|iters| {
            let (pool, each) = (&pool, &each);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Warm means warm: a pool drained by back-to-back
                    // starts would time a create instead.
                    pool.filled().await;
                    let t = std::time::Instant::now();
                    let c = pool
                        .start(["/bin/true"], None)
                        .await
                        .expect("start from pool");
                    let took = t.elapsed();
                    total += took;
                    each.lock().expect("not poisoned").push(took);
                    assert!(c.wait().await.expect("wait").success());
                    c.delete().await.expect("delete");
                }
                total
            }
        })
    });
    drop(pool);
    let mut each = each.into_inner().expect("not poisoned");
    if !each.is_empty() {
        let [p50, p90, p99] = corral_benches::quantiles(&mut each, [0.5, 0.9, 0.99]);
        eprintln!(
            "corral-lib-pool-start, per start over {} starts: median {p50:?}, p90 {p90:?}, p99 {p99:?}",
            each.len(),
        );
    }
    let cli = corral_cli();
    group.bench_function(BenchmarkId::new("corral-run", ns), |b| {
        b.iter(|| run_cli(&cli, &roots.join("corral"), &bundle, "cli"))
    });
    for peer in ["crun", "runc"] {
        let Ok(path) = which(peer) else {
            eprintln!("{peer} not installed: bash scripts/setup.sh");
            continue;
        };
        group.bench_function(BenchmarkId::new(format!("{peer}-run"), ns), |b| {
            b.iter(|| run_cli(&path, &roots.join(peer), &bundle, peer))
        });
    }
    group.finish();
    alternating(&tokio, &rt, &spec, &cli, &roots, &bundle);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Rounds of one start each of the library, `corral run` and the peers,
/// each timed on its own; prints every runtime's median and its ratio to
/// crun's. Criterion runs one bench after another, so the first (the
/// library) meets the kernel's clean-up of whatever ran before (cgroup
/// release, namespace teardown: a library median of 2.8 ms right after
/// the `phases` bench, 2.1 ms after 90 s idle), and its estimates are
/// means over samples, which a few slow starts pull up. Here each round
/// runs the runtimes in a new shuffled order (fixed seed), so each one
/// follows each of the others about equally often. (Rotating the order,
/// as an earlier version did, keeps the cyclic sequence: every runtime
/// then always followed the same one.) `STARTUP_ROUNDS` rounds (default
/// 200; 0 skips the pass).
fn alternating(
    tokio: &tokio::runtime::Runtime,
    rt: &corral::Runtime,
    spec: &corral::Spec,
    cli: &Path,
    roots: &Path,
    bundle: &Path,
) {
    let rounds: usize = match std::env::var("STARTUP_ROUNDS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("STARTUP_ROUNDS={v:?} is not a number of rounds")),
        Err(_) => 200,
    };
    if rounds == 0 {
        return;
    }
    let peers: Vec<(&str, std::path::PathBuf)> = ["crun", "runc"]
        .into_iter()
        .filter_map(|peer| which(peer).ok().map(|path| (peer, path)))
        .collect();
    let mut names = vec!["corral-lib", "corral-run"];
    names.extend(peers.iter().map(|(peer, _)| *peer));
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); names.len()];
    let mut order: Vec<usize> = (0..names.len()).collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..rounds {
        // Fisher-Yates with a 64-bit LCG.
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for &which in &order {
            let t = std::time::Instant::now();
            match which {
                0 => tokio.block_on(run_to_end(rt, spec.clone(), "lib")),
                1 => run_cli(cli, &roots.join("corral"), bundle, "alt-cli"),
                _ => {
                    let (peer, path) = &peers[which - 2];
                    run_cli(path, &roots.join(peer), bundle, peer);
                }
            }
            times[which].push(t.elapsed());
        }
    }
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|v| {
            v.sort();
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2
            }
        })
        .collect();
    let crun = names.iter().position(|n| *n == "crun").map(|i| medians[i]);
    println!("startup, alternating: median of {rounds} rounds, one start of each per round");
    for (name, d) in names.iter().zip(&medians) {
        let ratio = crun.map_or(String::new(), |c| {
            format!("  {:.2}x crun", d.as_secs_f64() / c.as_secs_f64())
        });
        println!("  {name:12} {:8.3} ms{ratio}", d.as_secs_f64() * 1000.0);
    }
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .ok_or(())
}

fn main() {
    require_root();
    reexec_in_private_mounts();
    let mut c = Criterion::default().configure_from_args();
    startup(&mut c);
    c.final_summary();
}
