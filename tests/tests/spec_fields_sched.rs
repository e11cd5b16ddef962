//! Process scheduling fields (`process.ioPriority`, `process.scheduler`,
//! `process.execCPUAffinity`), each checked from inside the container with
//! `probe`, plus bad-input tests (an error naming the field, no child and
//! no state left). `docs/spec-coverage.md` maps each field to its tests.

use corral::Spec;
use corral::oci_spec::runtime::{IOPriorityClass, LinuxIOPriorityBuilder};
use corral_tests::*;

/// Serialises this file's tests: they count this process's children.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

fn process(spec: &mut Spec) -> &mut corral::oci_spec::runtime::Process {
    spec.oci_mut().process_mut().as_mut().unwrap()
}

async fn probe_json(spec: Spec) -> serde_json::Value {
    let (status, out) = run_capture(&runtime(), spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn io_priority(class: IOPriorityClass, level: i64) -> corral::oci_spec::runtime::LinuxIOPriority {
    LinuxIOPriorityBuilder::default()
        .class(class)
        .priority(level)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// process.ioPriority

#[tokio::test]
async fn io_priority_class_and_level_are_set_for_the_process() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "ioprio"]);
    process(&mut spec).set_io_priority(Some(io_priority(IOPriorityClass::IoprioClassBe, 6)));
    let got = probe_json(spec).await;
    assert_eq!(
        (got["class"].as_i64(), got["level"].as_i64()),
        (Some(2), Some(6)),
        "{got}"
    );

    let mut spec = probe_spec(&["/probe", "ioprio"]);
    process(&mut spec).set_io_priority(Some(io_priority(IOPriorityClass::IoprioClassIdle, 0)));
    let got = probe_json(spec).await;
    assert_eq!(got["class"].as_i64(), Some(3), "{got}");
}

#[tokio::test]
async fn an_io_priority_level_outside_0_to_7_is_refused() {
    require_root();
    let _serial = serial().await;
    for level in [8, -1] {
        let mut spec = probe_spec(&["/probe"]);
        process(&mut spec)
            .set_io_priority(Some(io_priority(IOPriorityClass::IoprioClassBe, level)));
        assert_refused(spec, "process.ioPriority.priority").await;
    }
}

// ---------------------------------------------------------------------------
// process.scheduler

fn scheduler(
    b: corral::oci_spec::runtime::SchedulerBuilder,
) -> corral::oci_spec::runtime::Scheduler {
    b.build().unwrap()
}

#[tokio::test]
async fn scheduler_batch_with_nice_and_idle_are_set_for_the_process() {
    use corral::oci_spec::runtime::{LinuxSchedulerPolicy as Policy, SchedulerBuilder};
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe", "sched"]);
    process(&mut spec).set_scheduler(Some(scheduler(
        SchedulerBuilder::default()
            .policy(Policy::SchedBatch)
            .nice(-5),
    )));
    let got = probe_json(spec).await;
    assert_eq!(
        (got["policy"].as_i64(), got["nice"].as_i64()),
        (Some(libc::SCHED_BATCH.into()), Some(-5)),
        "{got}"
    );

    let mut spec = probe_spec(&["/probe", "sched"]);
    process(&mut spec).set_scheduler(Some(scheduler(
        SchedulerBuilder::default().policy(Policy::SchedIdle),
    )));
    let got = probe_json(spec).await;
    assert_eq!(
        got["policy"].as_i64(),
        Some(libc::SCHED_IDLE.into()),
        "{got}"
    );
}

#[tokio::test]
async fn invalid_scheduler_combinations_are_refused_naming_the_field() {
    use corral::oci_spec::runtime::{LinuxSchedulerPolicy as Policy, SchedulerBuilder};
    require_root();
    let _serial = serial().await;
    let b = SchedulerBuilder::default;
    let cases = [
        (
            b().policy(Policy::SchedOther).nice(-21),
            "process.scheduler.nice",
        ),
        (b().policy(Policy::SchedFifo), "process.scheduler.priority"),
        (
            b().policy(Policy::SchedBatch).priority(10),
            "process.scheduler.priority",
        ),
        (
            b().policy(Policy::SchedOther).runtime(5000u64),
            "process.scheduler.runtime",
        ),
        (
            b().policy(Policy::SchedDeadline)
                .runtime(5000u64)
                .deadline(4000u64),
            "process.scheduler.deadline",
        ),
    ];
    for (builder, field) in cases {
        let mut spec = probe_spec(&["/probe"]);
        process(&mut spec).set_scheduler(Some(scheduler(builder)));
        assert_refused(spec, field).await;
    }
}

// ---------------------------------------------------------------------------
// process.execCPUAffinity

fn affinity(json: &str) -> corral::oci_spec::runtime::ExecCPUAffinity {
    serde_json::from_str(json).unwrap()
}

/// An exec'able process running `args`, with `execCPUAffinity` from JSON.
fn exec_process(args: &[&str], json: Option<&str>) -> corral::oci_spec::runtime::Process {
    let mut p = corral::oci_spec::runtime::ProcessBuilder::default()
        .args(args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        .env(vec!["PATH=/bin".to_string()])
        .cwd("/")
        .build()
        .unwrap();
    p.set_exec_cpu_affinity(json.map(affinity));
    p
}

/// The CPUs this host may run on (`0-1` on the test machine).
fn host_cpus() -> Vec<i64> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned();
    let mut out = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        out.extend(a.parse::<i64>().unwrap()..=b.parse::<i64>().unwrap());
    }
    out
}

async fn exec_affinity_of(c: &corral::Container, json: Option<&str>) -> serde_json::Value {
    use tokio::io::AsyncReadExt;
    let mut p = c
        .exec(exec_process(&["/probe", "affinity"], json))
        .stdout(corral::Stdio::piped())
        .await
        .unwrap();
    let mut out = String::new();
    p.take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(p.wait().await.unwrap().success(), "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[tokio::test]
async fn exec_cpu_affinity_final_is_the_exec_processs_mask_and_absent_final_resets() {
    require_root();
    let _serial = serial().await;
    let cpus = host_cpus();
    skip_unless!(
        "a second CPU",
        if cpus.len() >= 2 {
            Ok(())
        } else {
            Err("one CPU")
        }
    );
    let (first, last) = (cpus[0], *cpus.last().unwrap());
    let rt = runtime();
    let mut c = rt
        .create(unique_id("affinity"), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();

    let json = format!(r#"{{"initial":"{first}","final":"{last}"}}"#);
    let got = exec_affinity_of(&c, Some(&json)).await;
    assert_eq!(got, serde_json::json!([last]), "final");

    // Without `final` the process gets the container's default (all the
    // cgroup's CPUs), not the `initial` mask the runtime set first.
    let json = format!(r#"{{"initial":"{last}"}}"#);
    let got = exec_affinity_of(&c, Some(&json)).await;
    assert_eq!(got, serde_json::json!(cpus), "reset after initial");

    c.kill(libc::SIGKILL).unwrap();
    c.wait().await.unwrap();
    c.delete().await.unwrap();
}

#[tokio::test]
async fn exec_cpu_affinity_does_not_apply_to_the_first_process() {
    require_root();
    let _serial = serial().await;
    let cpus = host_cpus();
    skip_unless!(
        "a second CPU",
        if cpus.len() >= 2 {
            Ok(())
        } else {
            Err("one CPU")
        }
    );
    let last = *cpus.last().unwrap();
    let mut spec = probe_spec(&["/probe", "affinity"]);
    process(&mut spec).set_exec_cpu_affinity(Some(affinity(&format!(
        r#"{{"initial":"{last}","final":"{last}"}}"#
    ))));
    let got = probe_json(spec).await;
    assert_eq!(
        got,
        serde_json::json!(cpus),
        "the spec: not applicable to the init"
    );
}

#[tokio::test]
async fn exec_cpu_affinity_outside_the_hosts_cpus_is_refused_naming_the_field() {
    require_root();
    let _serial = serial().await;
    let cases = [
        (
            r#"{"initial":"0","final":"4096"}"#,
            "process.execCPUAffinity.final",
        ),
        (r#"{"initial":"1-0"}"#, "process.execCPUAffinity.initial"),
    ];
    for (json, field) in cases {
        let mut spec = probe_spec(&["/probe"]);
        process(&mut spec).set_exec_cpu_affinity(Some(affinity(json)));
        assert_refused(spec, field).await;
    }
    // And for exec: refused before anything is cloned.
    let rt = runtime();
    let mut c = rt
        .create(unique_id("affinity-bad"), probe_spec(&["/probe", "pause"]))
        .await
        .unwrap();
    c.start().await.unwrap();
    let before = child_count();
    let err = c
        .exec(exec_process(
            &["/probe", "affinity"],
            Some(r#"{"final":"4096"}"#),
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("process.execCPUAffinity.final"),
        "{err}"
    );
    assert_eq!(child_count(), before, "a child was left");
    c.kill(libc::SIGKILL).unwrap();
    c.wait().await.unwrap();
    c.delete().await.unwrap();
}
