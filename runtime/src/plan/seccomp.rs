//! `linux.seccomp`: translated into classic BPF programs by the runtime
//! (the init only loads them, last before `execve`, see
//! `runtime-init/src/seccomp.rs`).
//!
//! Built with `seccompiler` (pure Rust, rust-vmm/Firecracker) and syscall
//! names from `syscalls`. A `seccompiler` filter has one match action, so
//! the profile becomes a stack of filters, which the kernel runs all of,
//! keeping the highest-precedence result (seccomp(2), "Filter return
//! values"):
//! - one filter per distinct rule action (`errnoRet` included): the
//!   syscall and its argument conditions → that action, else `ALLOW`;
//! - one filter for the default action: every listed syscall (with its
//!   conditions) → `ALLOW`, else the default action.
//!
//! A syscall matched by a rule therefore gets the rule's action whatever
//! the default; two rules matching one call yield the stricter action.
//!
//! Not done, refused naming the field: `SCMP_ACT_NOTIFY`, `listenerPath`
//! (no user-notification fd plumbing yet), architectures other than the
//! native one beyond what the native filter covers (see `arch_ok`), the
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` flag (only with NOTIFY). Names
//! unknown to this architecture are skipped, as runc does.

use std::collections::BTreeMap;

use corral_protocol::SeccompProgram;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use crate::error::{Error, Result};

/// `SECCOMP_FILTER_FLAG_*` (linux/seccomp.h).
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

#[cfg(target_arch = "x86_64")]
const NATIVE: (TargetArch, &[Arch]) = (
    TargetArch::x86_64,
    &[
        Arch::ScmpArchNative,
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
    ],
);
#[cfg(target_arch = "aarch64")]
const NATIVE: (TargetArch, &[Arch]) = (
    TargetArch::aarch64,
    &[
        Arch::ScmpArchNative,
        Arch::ScmpArchAarch64,
        Arch::ScmpArchArm,
    ],
);

/// The programs for `seccomp`, or `None` without one.
pub(crate) fn plan(seccomp: Option<&LinuxSeccomp>) -> Result<Option<SeccompProgram>> {
    let Some(s) = seccomp else {
        return Ok(None);
    };
    if let Some(path) = s.listener_path() {
        return Err(Error::unsupported(
            "linux.seccomp.listenerPath",
            format!("{path:?}: seccomp user notification is not implemented"),
        ));
    }
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        if !NATIVE.1.contains(a) {
            return Err(Error::invalid(
                format!("linux.seccomp.architectures[{i}]"),
                format!("{a:?} cannot run on this host"),
            ));
        }
    }
    let flags = flags(s)?;
    let default = action(
        "linux.seccomp.defaultAction",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    let mut by_action: Vec<(SeccompAction, BTreeMap<i64, Vec<SeccompRule>>)> = Vec::new();
    let mut listed: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.action"), sc.action(), sc.errno_ret())?;
        let rule = conditions(&field, sc.args().as_deref().unwrap_or(&[]))?;
        let slot = match by_action.iter().position(|(a, _)| *a == act) {
            Some(p) => p,
            None => {
                by_action.push((act.clone(), BTreeMap::new()));
                by_action.len() - 1
            }
        };
        for name in sc.names() {
            // Unknown to this architecture (a profile for many): skipped.
            let Ok(nr) = name.parse::<syscalls::Sysno>() else {
                continue;
            };
            let nr = i64::from(nr.id());
            add_rule(&mut by_action[slot].1, nr, rule.clone());
            add_rule(&mut listed, nr, rule.clone());
        }
    }
    let mut filters = Vec::new();
    if default != SeccompAction::Allow {
        filters.push(compile(
            "linux.seccomp.defaultAction",
            listed,
            default,
            SeccompAction::Allow,
        )?);
    }
    for (act, rules) in by_action {
        if act != SeccompAction::Allow && !rules.is_empty() {
            filters.push(compile(
                "linux.seccomp.syscalls",
                rules,
                SeccompAction::Allow,
                act,
            )?);
        }
    }
    Ok(Some(SeccompProgram { flags, filters }))
}

/// Adds `rule` (`None`: the whole syscall) to `nr`'s rules; an empty list
/// means "any arguments" to seccompiler and absorbs conditional rules.
fn add_rule(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rule: Option<SeccompRule>) {
    match (map.get_mut(&nr), rule) {
        (Some(rules), Some(r)) if !rules.is_empty() => rules.push(r),
        (Some(rules), None) => rules.clear(),
        (Some(_), Some(_)) => {}
        (None, r) => {
            map.insert(nr, r.into_iter().collect());
        }
    }
}

fn flags(s: &LinuxSeccomp) -> Result<u32> {
    let mut out = 0;
    for (i, f) in s.flags().iter().flatten().enumerate() {
        out |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            other => {
                return Err(Error::unsupported(
                    format!("linux.seccomp.flags[{i}]"),
                    format!("{other} is only meaningful with user notification"),
                ));
            }
        };
    }
    Ok(out)
}

fn action(field: &str, act: Act, errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match act {
        Act::ScmpActAllow => SeccompAction::Allow,
        Act::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
        Act::ScmpActKill | Act::ScmpActKillThread => SeccompAction::KillThread,
        Act::ScmpActKillProcess => SeccompAction::KillProcess,
        Act::ScmpActTrap => SeccompAction::Trap,
        Act::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(libc::EPERM as u32)),
        Act::ScmpActLog => SeccompAction::Log,
        Act::ScmpActNotify => {
            return Err(Error::unsupported(
                field,
                "SCMP_ACT_NOTIFY: seccomp user notification is not implemented",
            ));
        }
    })
}

/// The argument conditions of one syscall entry, ANDed; `None` for none.
fn conditions(field: &str, args: &[LinuxSeccompArg]) -> Result<Option<SeccompRule>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (j, a) in args.iter().enumerate() {
        let at = format!("{field}.args[{j}]");
        let (op, value) = match a.op() {
            Op::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
            Op::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
            Op::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
            Op::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            Op::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
            Op::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
            // libseccomp: (arg & value) == valueTwo.
            Op::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ),
        };
        let index = u8::try_from(a.index())
            .map_err(|_| Error::invalid(format!("{at}.index"), "above 5"))?;
        let cond = SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
            .map_err(|e| Error::invalid(&at, e.to_string()))?;
        out.push(cond);
    }
    SeccompRule::new(out)
        .map(Some)
        .map_err(|e| Error::invalid(field, e.to_string()))
}

fn compile(
    field: &str,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<Vec<u64>> {
    let filter = SeccompFilter::new(rules, mismatch, matched, NATIVE.0)
        .map_err(|e| Error::invalid(field, e.to_string()))?;
    let program: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| Error::invalid(field, e.to_string()))?;
    Ok(program
        .iter()
        .map(|i| {
            u64::from(i.code) | u64::from(i.jt) << 16 | u64::from(i.jf) << 24 | u64::from(i.k) << 32
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: serde_json::Value) -> Result<Option<SeccompProgram>> {
        let s: LinuxSeccomp = serde_json::from_value(v).unwrap();
        plan(Some(&s))
    }

    #[test]
    fn errno_rule_with_allow_default_is_one_filter() {
        let p = of(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]}))
        .unwrap()
        .unwrap();
        assert_eq!(p.filters.len(), 1);
        assert_eq!(p.flags, 0);
    }

    #[test]
    fn strict_default_adds_a_filter() {
        let p = of(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NE"}]}]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.filters.len(), 2);
        assert_eq!(p.flags, FLAG_LOG);
    }

    #[test]
    fn notify_and_listener_are_refused_naming_the_field() {
        let e = of(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}))
        .unwrap_err();
        assert!(
            e.to_string().contains("linux.seccomp.syscalls[0].action"),
            "{e}"
        );
        let e = of(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"})).unwrap_err();
        assert!(e.to_string().contains("listenerPath"), "{e}");
        let e =
            of(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}))
                .unwrap_err();
        assert!(e.to_string().contains("architectures[0]"), "{e}");
    }
}
