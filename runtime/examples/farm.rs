//! The main job: a test farm's day in miniature. Starts N containers (the
//! static `true` and `probe` from the built-in test rootfs) with bounded
//! concurrency from one runtime, awaits every exit, and prints how many
//! ran and the create+start+wait latency percentiles.
//!
//! `cargo run --release -p corral --example farm -- [N] [CONCURRENCY]` (root).

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral::oci_spec::runtime::LinuxNamespaceType as Ns;
use corral::{Runtime, Spec, Stdio};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

fn spec(args: &[&str]) -> anyhow::Result<Spec> {
    Ok(Spec::builder()
        .rootfs(corral_testbins::shared_rootfs())
        .readonly_root(true)
        .args(args.iter().copied())
        .namespaces(&[Ns::Pid, Ns::Mount, Ns::Ipc, Ns::Uts])
        .hostname("farm")
        .build()?)
}

async fn one(rt: Runtime, n: usize) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut c = rt
        .create(
            format!("farm-{}-{n}", std::process::id()),
            spec(&["/bin/true"])?,
        )
        .stdout(Stdio::null())
        .await?;
    c.start().await?;
    let status = c.wait().await?;
    anyhow::ensure!(status.success(), "container {n} exited with {status}");
    let took = t.elapsed();
    c.delete().await?;
    Ok(took)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        rustix::process::geteuid().is_root(),
        "the farm starts containers: run it as root"
    );
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let concurrency: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let rt = Runtime::builder().build()?;

    // One container that shows what it sees.
    let mut c = rt
        .create(
            format!("farm-probe-{}", std::process::id()),
            spec(&["/probe", "info"])?,
        )
        .stdout(Stdio::piped())
        .await?;
    let mut out = c.take_stdout().expect("piped");
    c.start().await?;
    let mut text = String::new();
    out.read_to_string(&mut text).await?;
    c.wait().await?;
    c.delete().await?;
    let info: serde_json::Value = serde_json::from_str(&text)?;
    println!(
        "probe: pid {} hostname {} uid {} sees {} mounts and procs {}",
        info["pid"],
        info["hostname"],
        info["uid"],
        info["mounts"].as_array().map_or(0, |m| m.len()),
        info["procs"]
    );

    let gate = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let tasks: Vec<_> = (0..total)
        .map(|n| {
            let (rt, gate) = (rt.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await?;
                one(rt, n).await
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(d) => lat.push(d),
            Err(e) => {
                failed += 1;
                eprintln!("failed: {e:#}");
            }
        }
    }
    let wall = start.elapsed();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "ran {} containers ({} failed) at concurrency {} in {:.2?}: {:.0}/s",
        lat.len(),
        failed,
        concurrency,
        wall,
        lat.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "create+start+wait latency: p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    anyhow::ensure!(failed == 0, "{failed} containers failed");
    Ok(())
}
