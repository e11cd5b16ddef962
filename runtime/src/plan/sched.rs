//! `process.scheduler` to the init's [`SchedAttr`] for `sched_setattr(2)`,
//! with the checks runc makes (and the kernel's `SCHED_DEADLINE` rules),
//! so that a bad value is refused at `create`, naming its field.
//!
//! Pure; the init applies the result (Step `scheduler`).

use corral_protocol::SchedAttr;
use oci_spec::runtime::{LinuxSchedulerFlag as Flag, LinuxSchedulerPolicy as Policy, Scheduler};

use crate::error::{Error, Result};

/// `sched_setattr` cannot take a runtime below this (`1 << DL_SCALE` ns).
const DL_MIN_RUNTIME: u64 = 1 << 10;

pub(crate) fn plan(s: Option<&Scheduler>) -> Result<Option<SchedAttr>> {
    let Some(s) = s else { return Ok(None) };
    let policy = match s.policy() {
        Policy::SchedOther => libc::SCHED_OTHER,
        Policy::SchedFifo => libc::SCHED_FIFO,
        Policy::SchedRr => libc::SCHED_RR,
        Policy::SchedBatch => libc::SCHED_BATCH,
        Policy::SchedIdle => libc::SCHED_IDLE,
        Policy::SchedDeadline => 6,
        Policy::SchedIso => {
            return Err(Error::unsupported(
                "process.scheduler.policy",
                "SCHED_ISO is not a Linux scheduling policy",
            ));
        }
    } as u32;
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::invalid(
            "process.scheduler.nice",
            format!("{nice} is outside -20..=19"),
        ));
    }
    let realtime = matches!(s.policy(), Policy::SchedFifo | Policy::SchedRr);
    let priority = s.priority().unwrap_or(0);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::invalid(
            "process.scheduler.priority",
            format!("{priority} is outside 1..=99 for {}", s.policy()),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::invalid(
            "process.scheduler.priority",
            format!("must be 0 for {}", s.policy()),
        ));
    }
    let (runtime, deadline, period) = deadline_params(s)?;
    Ok(Some(SchedAttr {
        policy,
        flags: flags(s)?,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
    }))
}

/// `runtime <= deadline <= period` (a zero period means the deadline), a
/// runtime of at least 1024 ns; only for `SCHED_DEADLINE`.
fn deadline_params(s: &Scheduler) -> Result<(u64, u64, u64)> {
    let runtime = s.runtime().unwrap_or(0);
    let deadline = s.deadline().unwrap_or(0);
    let period = s.period().unwrap_or(0);
    if *s.policy() != Policy::SchedDeadline {
        for (field, v) in [
            ("runtime", runtime),
            ("deadline", deadline),
            ("period", period),
        ] {
            if v != 0 {
                return Err(Error::invalid(
                    format!("process.scheduler.{field}"),
                    "only SCHED_DEADLINE takes runtime, deadline and period",
                ));
            }
        }
        return Ok((0, 0, 0));
    }
    if runtime < DL_MIN_RUNTIME {
        return Err(Error::invalid(
            "process.scheduler.runtime",
            format!("{runtime} ns is below {DL_MIN_RUNTIME} ns"),
        ));
    }
    if deadline < runtime {
        return Err(Error::invalid(
            "process.scheduler.deadline",
            format!("{deadline} ns is below the runtime ({runtime} ns)"),
        ));
    }
    if period != 0 && period < deadline {
        return Err(Error::invalid(
            "process.scheduler.period",
            format!("{period} ns is below the deadline ({deadline} ns)"),
        ));
    }
    Ok((runtime, deadline, period))
}

/// `SCHED_FLAG_*` bits. The utilization clamp flags are refused: the spec
/// gives no clamp values to go with them (runc would pass 0, clamping the
/// task to no utilization at all).
fn flags(s: &Scheduler) -> Result<u64> {
    let mut bits = 0;
    for (i, flag) in s.flags().iter().flatten().enumerate() {
        bits |= match flag {
            Flag::SchedResetOnFork => 0x01,
            Flag::SchedFlagReclaim => 0x02,
            Flag::SchedFlagDLOverrun => 0x04,
            Flag::SchedFlagKeepPolicy => 0x08,
            Flag::SchedFlagKeepParams => 0x10,
            Flag::SchedFlagUtilClampMin | Flag::SchedFlagUtilClampMax => {
                return Err(Error::unsupported(
                    format!("process.scheduler.flags[{i}]"),
                    format!("{flag}: the spec carries no utilization clamp values"),
                ));
            }
        };
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::SchedulerBuilder;

    use super::*;

    fn field_of(r: Result<Option<SchedAttr>>) -> String {
        match r.unwrap_err() {
            Error::InvalidSpec { field, .. } | Error::Unsupported { field, .. } => field,
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn batch_with_nice_translates() {
        let s = SchedulerBuilder::default()
            .policy(Policy::SchedBatch)
            .nice(5)
            .flags(vec![Flag::SchedResetOnFork])
            .build()
            .unwrap();
        let attr = plan(Some(&s)).unwrap().unwrap();
        assert_eq!((attr.policy, attr.nice, attr.flags), (3, 5, 1));
    }

    #[test]
    fn bad_scheduler_values_name_their_field() {
        let b = || SchedulerBuilder::default();
        let cases = [
            (
                b().policy(Policy::SchedOther).nice(20),
                "process.scheduler.nice",
            ),
            (b().policy(Policy::SchedFifo), "process.scheduler.priority"),
            (
                b().policy(Policy::SchedRr).priority(100),
                "process.scheduler.priority",
            ),
            (
                b().policy(Policy::SchedBatch).priority(1),
                "process.scheduler.priority",
            ),
            (
                b().policy(Policy::SchedIdle).runtime(2000u64),
                "process.scheduler.runtime",
            ),
            (
                b().policy(Policy::SchedDeadline)
                    .runtime(10u64)
                    .deadline(20u64),
                "process.scheduler.runtime",
            ),
            (
                b().policy(Policy::SchedDeadline)
                    .runtime(2000u64)
                    .deadline(1500u64),
                "process.scheduler.deadline",
            ),
            (
                b().policy(Policy::SchedDeadline)
                    .runtime(2000u64)
                    .deadline(3000u64)
                    .period(2500u64),
                "process.scheduler.period",
            ),
            (b().policy(Policy::SchedIso), "process.scheduler.policy"),
            (
                b().policy(Policy::SchedOther)
                    .flags(vec![Flag::SchedResetOnFork, Flag::SchedFlagUtilClampMax]),
                "process.scheduler.flags[1]",
            ),
        ];
        for (builder, field) in cases {
            let s = builder.build().unwrap();
            assert_eq!(field_of(plan(Some(&s))), field, "{s:?}");
        }
    }
}
