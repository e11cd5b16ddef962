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
