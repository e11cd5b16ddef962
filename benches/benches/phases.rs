//! Where start-up time goes: runs containers one after another and splits
//! each create + start + wait + delete into phases from the runtime's own
//! trace events (captured by a small tracing layer), printing the median
//! of each phase. Two shapes: the minimal spec (only /proc) and runc's
//! default config (the startup bench's bundle). Not a criterion bench: it
//! prints its table.
//!
//! `cargo bench -p corral-benches --bench phases` (root).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use corral_benches::{make_bundle, minimal_spec, next_id, require_root};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// `(message, when)` of every event, in order.
static EVENTS: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());

struct Recorder;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        EVENTS.lock().expect("events").push((m.0, Instant::now()));
    }
}

const PHASES: &[(&str, &str)] = &[
    ("plan + state + cgroup dirs", "cgroup made"),
    ("clone3 + exec of corral-init", "cloned"),
    ("init setup until Ready", "created"),
];

async fn one(rt: &corral::Runtime, spec: &corral::Spec) -> Vec<Duration> {
    EVENTS.lock().expect("events").clear();
    let t0 = Instant::now();
    let mut c = rt
        .create(next_id("ph"), spec.clone())
        .await
        .expect("create");
    let created = Instant::now();
    c.start().await.expect("start");
    let started = Instant::now();
    assert!(c.wait().await.expect("wait").success());
    let exited = Instant::now();
    c.delete().await.expect("delete");
    let deleted = Instant::now();
    let events = EVENTS.lock().expect("events").clone();
    let at = |msg: &str| events.iter().find(|(m, _)| m == msg).map(|(_, t)| *t);
    let mut out = Vec::new();
    let mut prev = t0;
    for (_, msg) in PHASES {
        let t = at(msg).unwrap_or(prev);
        out.push(t.saturating_duration_since(prev));
        prev = t;
    }
    debug_assert!(prev <= created);
    out.push(started - created);
    out.push(exited - started);
    out.push(deleted - exited);
    out
}

fn main() {
    require_root();
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(Recorder.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG)),
    );
    let tokio = corral_benches::tokio_runtime();
    let rt = corral::Runtime::builder().build().expect("runtime");
    let tmp = std::env::temp_dir().join(format!("corral-bench-phases-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let bundle = make_bundle(&tmp, &["/bin/true"]);
    let shapes = [
        ("minimal (/proc only)", minimal_spec(&["/bin/true"])),
        (
            "runc default config",
            corral::Spec::from_bundle(&bundle).expect("spec"),
        ),
    ];
    let names: Vec<&str> = PHASES
        .iter()
        .map(|(n, _)| *n)
        .chain([
            "start (Start .. workload exec'd)",
            "run + exit + wake-up",
            "delete",
        ])
        .collect();
    tokio.block_on(async {
        for (shape, spec) in &shapes {
            for _ in 0..20 {
                one(&rt, spec).await;
            }
            let runs: Vec<Vec<Duration>> = {
                let mut v = Vec::new();
                for _ in 0..300 {
                    v.push(one(&rt, spec).await);
                }
                v
            };
            println!("phases/{shape}: medians of {} runs", runs.len());
            let mut total = Duration::ZERO;
            for (i, name) in names.iter().enumerate() {
                let mut col: Vec<Duration> = runs.iter().map(|r| r[i]).collect();
                col.sort();
                let med = col[col.len() / 2];
                total += med;
                println!("  {name:36} {:>8.1} us", med.as_secs_f64() * 1e6);
            }
            println!(
                "  {:36} {:>8.1} us",
                "sum of medians",
                total.as_secs_f64() * 1e6
            );
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
}
