//! cgroup v2 device rules: v2 has no `devices.allow`/`devices.deny` files;
//! the kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the
//! cgroup instead. This module compiles the rule list (the same lines v1
//! writes, default allows included) into that program: pure, unit-tested.
//! Loading and attaching it is `sys::bpf`.
//!
//! Semantics are v1's: the last rule that matches an access decides it,
//! and an access no rule matches is allowed (a v1 cgroup starts allowing
//! everything; a spec denies with a leading `a *:* rwm` deny rule). So the
//! program tests the rules from last to first and returns at the first
//! match.

use crate::error::{Error, Result};

/// The file name under which v2 plans carry the rule lines; `tree::apply`
/// turns it into a program instead of a write.
pub(crate) const PSEUDO_FILE: &str = "devices (bpf program)";

/// `BPF_DEVCG_ACC_*` from `<linux/bpf.h>`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
/// `BPF_DEVCG_DEV_*`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One parsed rule line (`allow c 1:3 rwm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// `None` for `a` (any type).
    typ: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
}

/// Encodes rule lines for the pseudo write: one `allow|deny <v1 line>` per
/// line.
pub(crate) fn encode(rules: &[(bool, String)]) -> String {
    rules
        .iter()
        .map(|(allow, line)| format!("{} {line}", if *allow { "allow" } else { "deny" }))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse(line: &str) -> Result<Rule> {
    let bad = || {
        Error::invalid(
            "linux.resources.devices",
            format!("malformed rule {line:?}"),
        )
    };
    let mut words = line.split(' ');
    let allow = match words.next() {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(bad()),
    };
    let typ = match words.next() {
        Some("a") => None,
        Some("b") => Some(DEV_BLOCK),
        Some("c") => Some(DEV_CHAR),
        _ => return Err(bad()),
    };
    let (major, minor) = words
        .next()
        .and_then(|n| n.split_once(':'))
        .ok_or_else(bad)?;
    let number = |n: &str| -> Result<Option<i32>> {
        if n == "*" {
            Ok(None)
        } else {
            n.parse().map(Some).map_err(|_| bad())
        }
    };
    let mut access = 0;
    for c in words.next().ok_or_else(bad)?.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(bad()),
        };
    }
    Ok(Rule {
        allow,
        typ,
        major: number(major)?,
        minor: number(minor)?,
        access,
    })
}

/// eBPF instructions as `(code, dst, src, off, imm)`.
type Insn = (u8, u8, u8, i16, i32);

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// Compiles the encoded rules into the program's instructions, packed as
/// the kernel's `struct bpf_insn` (8 bytes each, little-endian fields).
pub(crate) fn compile(encoded: &str) -> Result<Vec<u64>> {
    let rules: Vec<Rule> = encoded.lines().map(parse).collect::<Result<_>>()?;
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    // with access_type = (access << 16) | type.
    let mut prog: Vec<Insn> = vec![
        (LDX_W, 2, 1, 0, 0),        // r2 = access_type
        (MOV32_X, 3, 2, 0, 0),      // r3 = r2
        (AND32_K, 3, 0, 0, 0xffff), // r3 = type
        (RSH32_K, 2, 0, 0, 16),     // r2 = access
        (LDX_W, 4, 1, 4, 0),        // r4 = major
        (LDX_W, 5, 1, 8, 0),        // r5 = minor
    ];
    for rule in rules.iter().rev() {
        let mut checks: Vec<Insn> = Vec::new();
        if let Some(t) = rule.typ {
            checks.push((JNE_K, 3, 0, 0, t));
        }
        if rule.access != ACC_MKNOD | ACC_READ | ACC_WRITE {
            // Matches only if every requested bit is in the rule's set.
            checks.push((MOV32_X, 1, 2, 0, 0));
            checks.push((AND32_K, 1, 0, 0, !rule.access));
            checks.push((JNE_K, 1, 0, 0, 0));
        }
        if let Some(m) = rule.major {
            checks.push((JNE_K, 4, 0, 0, m));
        }
        if let Some(m) = rule.minor {
            checks.push((JNE_K, 5, 0, 0, m));
        }
        // Every jump skips the rest of this rule's block: its remaining
        // checks and the two instructions of the verdict.
        let len = checks.len();
        for (i, insn) in checks.iter_mut().enumerate() {
            if insn.0 == JNE_K {
                insn.3 = (len - i - 1 + 2) as i16;
            }
        }
        let matches_all = checks.is_empty();
        prog.extend(checks);
        prog.push((MOV32_K, 0, 0, 0, i32::from(rule.allow)));
        prog.push((EXIT, 0, 0, 0, 0));
        if matches_all {
            // Nothing after this rule can be reached, and the verifier
            // refuses unreachable instructions.
            return Ok(prog.into_iter().map(pack).collect());
        }
    }
    // No rule matched: allowed, as in a fresh v1 cgroup.
    prog.push((MOV32_K, 0, 0, 0, 1));
    prog.push((EXIT, 0, 0, 0, 0));
    Ok(prog.into_iter().map(pack).collect())
}

fn pack((code, dst, src, off, imm): Insn) -> u64 {
    u64::from(code)
        | u64::from(dst & 0xf) << 8
        | u64::from(src & 0xf) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(i: u64) -> Insn {
        (
            i as u8,
            (i >> 8) as u8 & 0xf,
            (i >> 12) as u8 & 0xf,
            (i >> 16) as u16 as i16,
            (i >> 32) as u32 as i32,
        )
    }

    /// Runs the compiled program on one access: a tiny interpreter of the
    /// few instructions `compile` emits, so the rule semantics are tested
    /// without loading anything into the kernel.
    fn run(prog: &[u64], typ: i32, access: i32, major: i32, minor: i32) -> bool {
        let mut r = [0i64; 11];
        let ctx = [((access << 16) | typ) as u32, major as u32, minor as u32];
        let mut pc = 0usize;
        loop {
            let (code, dst, src, off, imm) = unpack(prog[pc]);
            let (d, s) = (dst as usize, src as usize);
            pc += 1;
            match code {
                LDX_W => r[d] = i64::from(ctx[off as usize / 4]),
                MOV32_X => r[d] = i64::from(r[s] as u32),
                MOV32_K => r[d] = i64::from(imm as u32),
                AND32_K => r[d] = i64::from(r[d] as u32 & imm as u32),
                RSH32_K => r[d] = i64::from((r[d] as u32) >> imm),
                JNE_K if r[d] as u32 != imm as u32 => pc = (pc as i64 + i64::from(off)) as usize,
                JNE_K => {}
                EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn prog(rules: &[(bool, &str)]) -> Vec<u64> {
        let owned: Vec<(bool, String)> = rules.iter().map(|(a, l)| (*a, l.to_string())).collect();
        compile(&encode(&owned)).unwrap()
    }

    #[test]
    fn no_rules_allow_everything() {
        let p = prog(&[]);
        assert!(run(&p, DEV_CHAR, ACC_READ, 1, 3));
    }

    #[test]
    fn deny_all_then_allow_null_is_a_whitelist() {
        let p = prog(&[(false, "a *:* rwm"), (true, "c 1:3 rwm")]);
        assert!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3));
        assert!(!run(&p, DEV_CHAR, ACC_READ, 1, 5));
        assert!(!run(&p, DEV_BLOCK, ACC_READ, 1, 3));
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let p = prog(&[
            (false, "a *:* rwm"),
            (true, "c 1:3 rwm"),
            (false, "c 1:3 rwm"),
        ]);
        assert!(!run(&p, DEV_CHAR, ACC_READ, 1, 3));
    }

    #[test]
    fn access_must_be_a_subset_of_the_rules() {
        let p = prog(&[(false, "a *:* rwm"), (true, "c *:* m"), (true, "c 5:0 r")]);
        assert!(run(&p, DEV_CHAR, ACC_MKNOD, 9, 9));
        assert!(run(&p, DEV_CHAR, ACC_READ, 5, 0));
        assert!(!run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 5, 0));
        assert!(!run(&p, DEV_CHAR, ACC_READ, 9, 9));
    }

    #[test]
    fn rules_before_a_match_all_rule_are_not_emitted() {
        // The verifier refuses unreachable instructions.
        let short = prog(&[(false, "a *:* rwm")]);
        let long = prog(&[(true, "c 1:3 rwm"), (false, "a *:* rwm")]);
        assert_eq!(short, long);
        assert!(!run(&long, DEV_CHAR, ACC_READ, 1, 3));
    }

    #[test]
    fn malformed_lines_are_refused_naming_the_field() {
        let err = compile("allow x 1:3 rwm").unwrap_err().to_string();
        assert!(err.contains("linux.resources.devices"), "{err}");
        assert!(compile("allow c 1:3 rwz").is_err());
        assert!(compile("maybe c 1:3 rwm").is_err());
    }
}
