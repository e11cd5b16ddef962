//! One seccomp filter program for a whole profile.
//!
//! Shape of the program (every far jump is a `ja`):
//!
//! ```text
//!     ld  arch                      ; seccomp_data.arch
//!     jeq AUDIT_ARCH_A  -> arch A   ; one entry per listed audit arch
//!     ...
//!     ret bad-arch action           ; an arch not listed
//! A:  ld  nr                        ; seccomp_data.nr
//!     (x86_64: nr >= 0x40000000 -> the x32 block, or bad arch)
//!     jeq NR1 -> ret action1        ; an unconditional syscall
//!     jeq NR2 -> rules of NR2       ; a syscall with argument rules
//!     ...
//!     ret default action
//! rules of NR2:
//!     rule 1: arg checks (any false -> rule 2), ret action
//!     rule 2: ...
//!     ret default action
//! ```
//!
//! The syscall lookup is linear: about three instructions per name and
//! architecture, so a docker/podman default profile (some 370 names, three
//! x86 architectures) takes about 2,500 of the kernel's 4,096.
//!
//! Rules of one syscall are tried in the kernel's order of precedence of
//! their actions (kill process first, allow last), so that when two rules
//! match one call the stricter wins, as with a stack of filters.
//!
//! 64-bit argument comparisons are done on the two 32-bit halves that
//! classic BPF can load (the high word decides unless equal); on 32-bit
//! architectures only the low word is compared (see `ArchInfo::is_32bit`).

use std::collections::BTreeMap;

use super::arch::{ArchInfo, Table, X32_SYSCALL_BIT};
use super::bpf::{Asm, AsmError, Insn, JMP_JGE_K, Label, To};

/// `offsetof(struct seccomp_data, nr)`.
const OFF_NR: u32 = 0;
/// `offsetof(struct seccomp_data, arch)`.
const OFF_ARCH: u32 = 4;
/// `offsetof(struct seccomp_data, args)`: six `u64`s in host byte order.
const OFF_ARGS: u32 = 16;

/// A comparison of one argument (libseccomp's `SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
    },
}

/// `args[index] <cmp> value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub index: u8,
    pub cmp: Cmp,
    pub value: u64,
}

/// A syscall entry: all `conds` true → `action` (a `SECCOMP_RET_*` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub action: u32,
    pub conds: Vec<Cond>,
}

/// A profile with its names already resolved is compiled per arch from
/// these inputs.
#[derive(Debug)]
pub(crate) struct Profile<'a> {
    pub default: u32,
    pub bad_arch: u32,
    pub arches: &'a [ArchInfo],
    /// `(name, rule)` in the spec's order.
    pub rules: &'a [(String, Rule)],
}

/// `SECCOMP_RET_*` precedence (seccomp(2)): lower is stronger.
fn precedence(action: u32) -> u8 {
    match action & 0xFFFF_0000 {
        0x8000_0000 => 0, // KILL_PROCESS
        0x0000_0000 => 1, // KILL_THREAD
        0x0003_0000 => 2, // TRAP
        0x0005_0000 => 3, // ERRNO
        0x7FC0_0000 => 4, // USER_NOTIF
        0x7FF0_0000 => 5, // TRACE
        0x7FFC_0000 => 6, // LOG
        _ => 7,           // ALLOW
    }
}

/// The program, or why it cannot be one.
pub(crate) fn compile(p: &Profile<'_>) -> Result<Vec<Insn>, AsmError> {
    let mut asm = Asm::default();
    let mut arches: Vec<ArchInfo> = p.arches.to_vec();
    arches.sort();
    arches.dedup();
    // Group by audit arch: x86_64 and x32 share one.
    let mut by_audit: BTreeMap<u32, Vec<ArchInfo>> = BTreeMap::new();
    for a in arches {
        by_audit.entry(a.audit).or_default().push(a);
    }
    asm.load(OFF_ARCH);
    let mut blocks = Vec::new();
    for (&audit, group) in &by_audit {
        let l = asm.label();
        asm.jump_if(super::bpf::JMP_JEQ_K, audit, l);
        blocks.push((l, group));
    }
    asm.ret(p.bad_arch);
    for (l, group) in blocks {
        asm.bind(l);
        asm.load(OFF_NR);
        let x86_64 = group.iter().find(|a| a.table == Table::X86_64);
        let x32 = group.iter().find(|a| a.table == Table::X32);
        match (x86_64, x32) {
            (Some(a), Some(x32)) => {
                let x = asm.label();
                asm.jump_if(JMP_JGE_K, X32_SYSCALL_BIT, x);
                arch_block(&mut asm, p, *a);
                asm.bind(x);
                arch_block(&mut asm, p, *x32);
            }
            (Some(a), None) => {
                // An x32 call where only x86_64 is listed.
                let ok = asm.label();
                asm.jge(X32_SYSCALL_BIT, To::Next, To::L(ok));
                asm.ret(p.bad_arch);
                asm.bind(ok);
                arch_block(&mut asm, p, *a);
            }
            (None, Some(a)) => {
                let ok = asm.label();
                asm.jge(X32_SYSCALL_BIT, To::L(ok), To::Next);
                asm.ret(p.bad_arch);
                asm.bind(ok);
                arch_block(&mut asm, p, *a);
            }
            (None, None) => arch_block(&mut asm, p, group[0]),
        }
    }
    asm.finish()
}

/// The syscall lookup of one architecture, with `A` = `seccomp_data.nr`.
fn arch_block(asm: &mut Asm, p: &Profile<'_>, arch: ArchInfo) {
    let mut by_nr: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for (name, rule) in p.rules {
        // A name this architecture lacks is skipped, as runc does.
        if let Some(nr) = arch.number(name) {
            by_nr.entry(nr).or_default().push(rule);
        }
    }
    let mut far: Vec<(Label, Vec<&Rule>)> = Vec::new();
    for (nr, mut rules) in by_nr {
        rules.sort_by_key(|r| precedence(r.action));
        // Nothing after an unconditional rule can match.
        if let Some(i) = rules.iter().position(|r| r.conds.is_empty()) {
            rules.truncate(i + 1);
        }
        match rules.as_slice() {
            [only] if only.conds.is_empty() => {
                if only.action == p.default {
                    continue;
                }
                let skip = asm.label();
                asm.jeq(nr, To::Next, To::L(skip));
                asm.ret(only.action);
                asm.bind(skip);
            }
            _ => {
                let l = asm.label();
                asm.jump_if(super::bpf::JMP_JEQ_K, nr, l);
                far.push((l, rules));
            }
        }
    }
    asm.ret(p.default);
    for (l, rules) in far {
        asm.bind(l);
        for rule in rules {
            let next = asm.label();
            for c in &rule.conds {
                cond(asm, arch, c, next);
            }
            asm.ret(rule.action);
            asm.bind(next);
        }
        asm.ret(p.default);
    }
}

/// Falls through when `c` holds, jumps to `fail` when not.
fn cond(asm: &mut Asm, arch: ArchInfo, c: &Cond, fail: Label) {
    // Little-endian hosts keep the low word first.
    let lo_off =
        OFF_ARGS + 8 * u32::from(c.index) + if cfg!(target_endian = "big") { 4 } else { 0 };
    let hi_off =
        OFF_ARGS + 8 * u32::from(c.index) + if cfg!(target_endian = "big") { 0 } else { 4 };
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let f = To::L(fail);
    let n = To::Next;
    if arch.is_32bit() {
        asm.load(lo_off);
        match c.cmp {
            Cmp::Eq => asm.jeq(vl, n, f),
            Cmp::Ne => asm.jeq(vl, f, n),
            Cmp::Gt => asm.jgt(vl, n, f),
            Cmp::Ge => asm.jge(vl, n, f),
            Cmp::Lt => asm.jge(vl, f, n),
            Cmp::Le => asm.jgt(vl, f, n),
            Cmp::MaskedEq { mask } => {
                asm.and(mask as u32);
                asm.jeq(vl, n, f);
            }
        }
        return;
    }
    let pass = asm.label();
    let p = To::L(pass);
    asm.load(hi_off);
    match c.cmp {
        Cmp::Eq => {
            asm.jeq(vh, n, f);
            asm.load(lo_off);
            asm.jeq(vl, n, f);
        }
        Cmp::Ne => {
            asm.jeq(vh, n, p);
            asm.load(lo_off);
            asm.jeq(vl, f, n);
        }
        // hi > vh, or hi == vh and lo (>, >=) vl.
        Cmp::Gt | Cmp::Ge => {
            asm.jgt(vh, p, n);
            asm.jeq(vh, n, f);
            asm.load(lo_off);
            if c.cmp == Cmp::Gt {
                asm.jgt(vl, n, f);
            } else {
                asm.jge(vl, n, f);
            }
        }
        // The negations: LT is !GE, LE is !GT.
        Cmp::Lt | Cmp::Le => {
            asm.jgt(vh, f, n);
            asm.jeq(vh, n, p);
            asm.load(lo_off);
            if c.cmp == Cmp::Lt {
                asm.jge(vl, f, n);
            } else {
                asm.jgt(vl, f, n);
            }
        }
        Cmp::MaskedEq { mask } => {
            asm.and((mask >> 32) as u32);
            asm.jeq(vh, n, f);
            asm.load(lo_off);
            asm.and(mask as u32);
            asm.jeq(vl, n, f);
        }
    }
    asm.bind(pass);
}
