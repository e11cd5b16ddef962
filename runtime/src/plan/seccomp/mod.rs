//! `linux.seccomp`: translated by the runtime into ONE classic BPF program
//! (the init only loads it, see `runtime-init/src/seccomp.rs`).
//!
//! corral compiles the program itself (`compile.rs` over the assembler in
//! `bpf.rs`): no maintained pure-Rust builder expresses both
//! `SECCOMP_RET_USER_NOTIF` and several architectures in one filter, and
//! binding libseccomp would put a C library into the async library. The
//! program dispatches on `seccomp_data.arch` to one syscall lookup per
//! listed architecture (numbers from the `syscalls` crate, x32 from a small
//! table in `arch.rs`); a call of an architecture not listed gets
//! libseccomp's default bad-arch action, `SCMP_ACT_KILL` (kill the
//! thread), which runc keeps. Syscall names unknown to an architecture are
//! skipped there, as runc does.
//!
//! `SCMP_ACT_NOTIFY` makes the init load the filter with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER` and hand the listener fd to the
//! runtime, which passes it on to the agent at `listenerPath`
//! (`crate::seccomp_notify`). This module checks the fields and says where.

mod arch;
mod bpf;
mod compile;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use corral_protocol::SeccompProgram;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

use self::compile::{Cmp, Cond, Profile, Rule};
use crate::error::{Error, Result};

/// `SECCOMP_FILTER_FLAG_*` (linux/seccomp.h).
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
pub(crate) const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// `SECCOMP_RET_*` (linux/seccomp.h).
mod ret {
    pub(super) const KILL_PROCESS: u32 = 0x8000_0000;
    pub(super) const KILL_THREAD: u32 = 0x0000_0000;
    pub(super) const TRAP: u32 = 0x0003_0000;
    pub(super) const ERRNO: u32 = 0x0005_0000;
    pub(super) const USER_NOTIF: u32 = 0x7FC0_0000;
    pub(super) const TRACE: u32 = 0x7FF0_0000;
    pub(super) const LOG: u32 = 0x7FFC_0000;
    pub(super) const ALLOW: u32 = 0x7FFF_0000;
}

/// Where the runtime sends the user-notification fd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    /// `listenerPath`: a unix stream socket on the host.
    pub path: PathBuf,
    /// `listenerMetadata`, passed through.
    pub metadata: String,
}

/// The program for `seccomp`, and the listener when it notifies; `None`
/// without a profile.
pub(crate) fn plan(
    seccomp: Option<&LinuxSeccomp>,
) -> Result<(Option<SeccompProgram>, Option<Listener>)> {
    let Some(s) = seccomp else {
        return Ok((None, None));
    };
    let arches = arches(s)?;
    let mut flags = flags(s)?;
    let default = action(
        "linux.seccomp.defaultAction",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    if default == ret::USER_NOTIF {
        return Err(Error::invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (every syscall, the init's \
             own included, would wait for the agent)",
        ));
    }
    let mut rules = Vec::new();
    let mut notifies = false;
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.action"), sc.action(), sc.errno_ret())?;
        let conds = conditions(&field, sc.args().as_deref().unwrap_or(&[]))?;
        if act == ret::USER_NOTIF {
            notifies = true;
            if let Some(n) = sc.names().iter().find(|n| *n == "sendmsg") {
                // The init hands the listener fd out with sendmsg, after the
                // filter is loaded: nobody could answer that notification.
                return Err(Error::invalid(
                    format!("{field}.names"),
                    format!("SCMP_ACT_NOTIFY on {n:?}, which hands the listener fd out"),
                ));
            }
        }
        for name in sc.names() {
            rules.push((
                name.clone(),
                Rule {
                    action: act,
                    conds: conds.clone(),
                },
            ));
        }
    }
    let listener = listener(s, notifies)?;
    if notifies {
        flags |= FLAG_NEW_LISTENER;
    } else if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
        return Err(Error::invalid(
            "linux.seccomp.flags",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule",
        ));
    }
    let profile = Profile {
        default,
        bad_arch: ret::KILL_THREAD,
        arches: &arches,
        rules: &rules,
    };
    let program = compile::compile(&profile).map_err(|e| {
        Error::invalid(
            "linux.seccomp",
            match e {
                bpf::AsmError::TooLong(n) => format!(
                    "the profile needs {n} BPF instructions, above the kernel's {}",
                    bpf::MAX_INSNS
                ),
                other => format!("internal compiler error: {other:?}"),
            },
        )
    })?;
    Ok((
        Some(SeccompProgram {
            flags,
            filters: vec![program.into_iter().map(bpf::Insn::pack).collect()],
        }),
        listener,
    ))
}

/// `architectures`; none listed means the native one (libseccomp's
/// default context).
fn arches(s: &LinuxSeccomp) -> Result<Vec<arch::ArchInfo>> {
    let list = s.architectures().as_deref().unwrap_or(&[]);
    if list.is_empty() {
        return Ok(vec![arch::native()]);
    }
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            arch::lookup(*a).ok_or_else(|| {
                Error::unsupported(
                    format!("linux.seccomp.architectures[{i}]"),
                    format!("{a:?}: corral has no syscall table for it"),
                )
            })
        })
        .collect()
}

/// `listenerPath` and `listenerMetadata`: required by, and only used
/// with, a NOTIFY rule.
fn listener(s: &LinuxSeccomp, notifies: bool) -> Result<Option<Listener>> {
    let path = s
        .listener_path()
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    match path {
        None if notifies => Err(Error::invalid(
            "linux.seccomp.listenerPath",
            "required by SCMP_ACT_NOTIFY: the agent's unix socket",
        )),
        Some(p) if !p.is_absolute() => Err(Error::invalid(
            "linux.seccomp.listenerPath",
            format!("{p:?} is not absolute"),
        )),
        Some(p) if notifies => Ok(Some(Listener {
            path: p.clone(),
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        })),
        // runc ignores a listener without NOTIFY rules: no fd to send.
        _ => Ok(None),
    }
}

fn flags(s: &LinuxSeccomp) -> Result<u32> {
    let mut out = 0;
    for f in s.flags().iter().flatten() {
        out |= match f {
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    Ok(out)
}

/// The `SECCOMP_RET_*` value of an action.
fn action(field: &str, act: Act, errno: Option<u32>) -> Result<u32> {
    let data = |default: i32| -> Result<u32> {
        let v = errno.unwrap_or(default as u32);
        if v > 0xFFFF {
            let at = match field.strip_suffix("defaultAction") {
                Some(prefix) => format!("{prefix}defaultErrnoRet"),
                None => field.replace(".action", ".errnoRet"),
            };
            return Err(Error::invalid(
                at,
                format!("{v} does not fit SECCOMP_RET_DATA (16 bits)"),
            ));
        }
        Ok(v)
    };
    Ok(match act {
        Act::ScmpActAllow => ret::ALLOW,
        Act::ScmpActErrno => ret::ERRNO | data(libc::EPERM)?,
        Act::ScmpActKill | Act::ScmpActKillThread => ret::KILL_THREAD,
        Act::ScmpActKillProcess => ret::KILL_PROCESS,
        Act::ScmpActTrap => ret::TRAP,
        Act::ScmpActTrace => ret::TRACE | data(libc::EPERM)?,
        Act::ScmpActLog => ret::LOG,
        Act::ScmpActNotify => ret::USER_NOTIF,
    })
}

/// The argument conditions of one syscall entry, ANDed.
fn conditions(field: &str, args: &[LinuxSeccompArg]) -> Result<Vec<Cond>> {
    let mut out = Vec::new();
    for (j, a) in args.iter().enumerate() {
        let at = format!("{field}.args[{j}]");
        let index = u8::try_from(a.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| Error::invalid(format!("{at}.index"), "above 5"))?;
        let (cmp, value) = match a.op() {
            Op::ScmpCmpNe => (Cmp::Ne, a.value()),
            Op::ScmpCmpLt => (Cmp::Lt, a.value()),
            Op::ScmpCmpLe => (Cmp::Le, a.value()),
            Op::ScmpCmpEq => (Cmp::Eq, a.value()),
            Op::ScmpCmpGe => (Cmp::Ge, a.value()),
            Op::ScmpCmpGt => (Cmp::Gt, a.value()),
            // libseccomp: (arg & value) == valueTwo.
            Op::ScmpCmpMaskedEq => (
                Cmp::MaskedEq { mask: a.value() },
                a.value_two().unwrap_or(0),
            ),
        };
        out.push(Cond { index, cmp, value });
    }
    Ok(out)
}
