//! The compiler checked by running its programs: a small classic-BPF
//! interpreter (the subset the compiler emits, with the kernel's checks)
//! evaluates them against synthetic `seccomp_data`.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

use super::arch::{X32_SYSCALL_BIT, audit};
use super::bpf::{self, Insn};
use super::*;

/// `struct seccomp_data` in host byte order.
fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..4].copy_from_slice(&nr.to_ne_bytes());
    d[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    d
}

/// Runs `prog` on `d` and returns what the filter returns. Panics on
/// anything the kernel's checker would refuse (out-of-range load or jump,
/// an unknown opcode, falling off the end).
fn run(prog: &[u64], d: &[u8; 64]) -> u32 {
    assert!(prog.len() <= bpf::MAX_INSNS, "{} instructions", prog.len());
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = Insn::unpack(*prog.get(pc).expect("fell off the end"));
        pc += 1;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            bpf::LD_W_ABS => {
                let k = i.k as usize;
                assert!(k % 4 == 0 && k + 4 <= 64, "load at {k}");
                a = u32::from_ne_bytes(d[k..k + 4].try_into().unwrap());
            }
            bpf::ALU_AND_K => a &= i.k,
            bpf::JMP_JA => pc += i.k as usize,
            bpf::JMP_JEQ_K => pc += jump(a == i.k),
            bpf::JMP_JGT_K => pc += jump(a > i.k),
            bpf::JMP_JGE_K => pc += jump(a >= i.k),
            bpf::RET_K => return i.k,
            other => panic!("opcode {other:#x}"),
        }
    }
}

fn of(v: serde_json::Value) -> Result<(Option<SeccompProgram>, Option<Listener>)> {
    let s: LinuxSeccomp = serde_json::from_value(v).unwrap();
    plan(Some(&s))
}

fn program(v: serde_json::Value) -> SeccompProgram {
    of(v).unwrap().0.unwrap()
}

const X86: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
const ERRNO1: u32 = ret::ERRNO | 1;

fn nr(name: &str, arch: &str) -> u32 {
    let a: oci_spec::runtime::Arch = serde_json::from_value(json!(arch)).unwrap();
    arch::lookup(a).unwrap().number(name).unwrap()
}

#[test]
fn one_program_dispatches_on_every_listed_architecture() {
    let p = program(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": X86,
        "syscalls": [{"names": ["mkdir", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
    );
    assert_eq!(p.filters.len(), 1);
    assert_eq!(p.flags, 0);
    let f = &p.filters[0];
    let z = [0; 6];
    // mkdir: 83 on x86_64, 39 on i386, 83 | x32 bit on x32.
    assert_eq!(run(f, &data(audit::X86_64, 83, z)), ERRNO1);
    assert_eq!(run(f, &data(audit::I386, 39, z)), ERRNO1);
    assert_eq!(
        run(f, &data(audit::X86_64, 83 | X32_SYSCALL_BIT, z)),
        ERRNO1
    );
    assert_eq!(nr("mkdir", "SCMP_ARCH_X86"), 39);
    // i386's 83 is symlink, not mkdir.
    assert_eq!(run(f, &data(audit::I386, 83, z)), ret::ALLOW);
    assert_eq!(run(f, &data(audit::X86_64, 84, z)), ret::ALLOW);
    // An architecture not listed: libseccomp's bad-arch action.
    assert_eq!(run(f, &data(audit::AARCH64, 34, z)), ret::KILL_THREAD);
}

#[test]
fn x32_calls_are_told_from_x86_64_by_the_x32_bit() {
    let only64 = program(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}));
    let f = &only64.filters[0];
    assert_eq!(run(f, &data(audit::X86_64, 83, [0; 6])), ERRNO1);
    assert_eq!(
        run(f, &data(audit::X86_64, 1 | X32_SYSCALL_BIT, [0; 6])),
        ret::KILL_THREAD
    );
    let only32 = program(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X32"],
        "syscalls": [{"names": ["execve", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}));
    let f = &only32.filters[0];
    assert_eq!(run(f, &data(audit::X86_64, 83, [0; 6])), ret::KILL_THREAD);
    // x32's execve is 520, not x86_64's 59.
    assert_eq!(
        run(f, &data(audit::X86_64, 520 | X32_SYSCALL_BIT, [0; 6])),
        ERRNO1
    );
    assert_eq!(
        run(f, &data(audit::X86_64, 59 | X32_SYSCALL_BIT, [0; 6])),
        ret::ALLOW
    );
}

#[test]
fn no_architectures_means_the_native_one() {
    let p = program(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}]}));
    let native = arch::native();
    let getpid = native.number("getpid").unwrap();
    assert_eq!(
        run(&p.filters[0], &data(native.audit, getpid, [0; 6])),
        ret::KILL_PROCESS
    );
    assert_eq!(
        run(&p.filters[0], &data(audit::I386, 20, [0; 6])),
        ret::KILL_THREAD
    );
}

#[test]
fn foreign_architectures_with_a_table_compile() {
    let p = program(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_PPC64LE",
                          "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64", "SCMP_ARCH_MIPSEL",
                          "SCMP_ARCH_MIPS64", "SCMP_ARCH_LOONGARCH64"],
        "syscalls": [{"names": ["read", "mkdirat"], "action": "SCMP_ACT_ALLOW"}]}));
    let f = &p.filters[0];
    // read is 63 on aarch64, 3 on arm, 4003 on mips o32.
    assert_eq!(run(f, &data(audit::AARCH64, 63, [0; 6])), ret::ALLOW);
    assert_eq!(run(f, &data(audit::ARM, 3, [0; 6])), ret::ALLOW);
    assert_eq!(run(f, &data(audit::MIPSEL, 4003, [0; 6])), ret::ALLOW);
    assert_eq!(
        run(f, &data(audit::AARCH64, 64, [0; 6])),
        ret::ERRNO | libc::EPERM as u32
    );
    assert_eq!(run(f, &data(audit::X86_64, 0, [0; 6])), ret::KILL_THREAD);
    let e = of(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PARISC"]}))
        .unwrap_err();
    assert!(e.to_string().contains("architectures[0]"), "{e}");
}

/// Values where 64-bit comparisons on two 32-bit words go wrong if the
/// word logic is wrong.
const EDGES: [u64; 12] = [
    0,
    1,
    2,
    0x7FFF_FFFF,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_FFFF_FFFF,
    0xFFFF_FFFF_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

fn holds(op: &str, arg: u64, value: u64, two: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == two,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

#[test]
fn all_seven_operators_compare_64_bit_arguments_exactly() {
    for op in OPS {
        for value in EDGES {
            let two = value & 0xFFFF_0000_FFFF_0001;
            let p = program(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": X86,
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                    "args": [{"index": 3, "op": op, "value": value, "valueTwo": two}]}]}));
            for arg in EDGES
                .iter()
                .chain(&[value.wrapping_add(1), value.wrapping_sub(1)])
            {
                let mut args = [0u64; 6];
                args[3] = *arg;
                let want = if holds(op, *arg, value, two) {
                    ERRNO1
                } else {
                    ret::ALLOW
                };
                let got = run(&p.filters[0], &data(audit::X86_64, 39, args));
                assert_eq!(got, want, "{op} arg {arg:#x} value {value:#x} two {two:#x}");
                // i386 (getpid 20) compares the low 32 bits only.
                let (a32, v32, t32) = (*arg as u32 as u64, value as u32 as u64, two as u32 as u64);
                args[3] = a32;
                let want = if holds(op, a32, v32, t32) {
                    ERRNO1
                } else {
                    ret::ALLOW
                };
                let got = run(&p.filters[0], &data(audit::I386, 20, args));
                assert_eq!(got, want, "i386 {op} arg {a32:#x} value {v32:#x}");
            }
        }
    }
}

#[test]
fn conditions_are_anded_and_rules_ored_with_the_stricter_action_first() {
    let p = program(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": X86,
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 5},
                      {"index": 1, "op": "SCMP_CMP_GT", "value": 10}]},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 1, "op": "SCMP_CMP_GT", "value": 100}]}]}),
    );
    let f = &p.filters[0];
    let call = |a0, a1| run(f, &data(audit::X86_64, 39, [a0, a1, 0, 0, 0, 0]));
    assert_eq!(call(5, 11), ERRNO1);
    assert_eq!(call(5, 10), ret::ALLOW);
    assert_eq!(call(4, 11), ret::ALLOW);
    // Both rules match: the kill wins, though listed second.
    assert_eq!(call(5, 101), ret::KILL_PROCESS);
    assert_eq!(call(0, 101), ret::KILL_PROCESS);
}

#[test]
fn every_action_maps_to_its_return_value() {
    for (act, want) in [
        ("SCMP_ACT_KILL", ret::KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", ret::KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", ret::KILL_PROCESS),
        ("SCMP_ACT_TRAP", ret::TRAP),
        ("SCMP_ACT_ERRNO", ret::ERRNO | 7),
        ("SCMP_ACT_TRACE", ret::TRACE | 7),
        ("SCMP_ACT_LOG", ret::LOG),
    ] {
        let p = program(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": act, "errnoRet": 7}]}));
        let native = arch::native();
        let nr = native.number("getpid").unwrap();
        assert_eq!(
            run(&p.filters[0], &data(native.audit, nr, [0; 6])),
            want,
            "{act}"
        );
    }
}

#[test]
fn a_default_profile_sized_profile_fits_the_kernel_limit() {
    // The shape of docker's and podman's default: every x86_64 name
    // allowed (a few with argument rules), default ERRNO(ENOSYS), three
    // architectures, plus names only other architectures know.
    let mut names: Vec<String> = syscalls::x86_64::Sysno::iter()
        .map(|s| s.name().to_owned())
        .collect();
    names.extend(["arm_fadvise64_64", "breakpoint", "cacheflush", "set_tls"].map(String::from));
    names.retain(|n| n != "personality");
    assert!(names.len() > 350);
    let p = program(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": X86,
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 0}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 8}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 16}]}]}),
    );
    let f = &p.filters[0];
    assert!(
        f.len() <= bpf::MAX_INSNS && f.len() > 2000,
        "{} instructions",
        f.len()
    );
    let enosys = ret::ERRNO | 38;
    for (audit, nr) in [
        (audit::X86_64, 135u32),
        (audit::I386, 136),
        (audit::X86_64, 135 | X32_SYSCALL_BIT),
    ] {
        assert_eq!(run(f, &data(audit, nr, [8, 0, 0, 0, 0, 0])), ret::ALLOW);
        assert_eq!(run(f, &data(audit, nr, [9, 0, 0, 0, 0, 0])), enosys);
    }
    // The last x86_64 name, far down the lookup.
    let last = syscalls::x86_64::Sysno::iter().last().unwrap();
    assert_eq!(
        run(f, &data(audit::X86_64, last.id() as u32, [0; 6])),
        ret::ALLOW
    );
    assert_eq!(
        run(f, &data(audit::X86_64, 41, [16, 0, 0, 0, 0, 0])),
        ERRNO1
    );
    assert_eq!(
        run(f, &data(audit::X86_64, 41, [2, 0, 0, 0, 0, 0])),
        ret::ALLOW
    );
    assert_eq!(run(f, &data(audit::X86_64, 999, [0; 6])), enosys);
}

#[test]
fn an_oversized_profile_is_refused_not_truncated() {
    let mut syscalls = Vec::new();
    for i in 0..500u64 {
        syscalls.push(
            json!({"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": i},
                     {"index": 1, "op": "SCMP_CMP_EQ", "value": i},
                     {"index": 2, "op": "SCMP_CMP_EQ", "value": i}]}),
        );
    }
    let e = match of(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})) {
        Err(e) => e,
        Ok((p, _)) => panic!("{} instructions", p.unwrap().filters[0].len()),
    };
    assert!(e.to_string().contains("4096"), "{e}");
}

#[test]
fn notify_asks_for_a_listener_and_needs_its_path() {
    let (p, l) = of(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}))
    .unwrap();
    let p = p.unwrap();
    assert_eq!(
        p.flags,
        FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV | FLAG_LOG
    );
    let l = l.unwrap();
    assert_eq!(l.path, std::path::Path::new("/run/agent.sock"));
    assert_eq!(l.metadata, "m");
    let native = arch::native();
    let mkdir = native.number("mkdir").unwrap();
    assert_eq!(
        run(&p.filters[0], &data(native.audit, mkdir, [0; 6])),
        ret::USER_NOTIF
    );

    let e = of(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}))
    .unwrap_err();
    assert!(e.to_string().contains("linux.seccomp.listenerPath"), "{e}");
    let e = of(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not absolute"), "{e}");
    let e = of(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}))
    .unwrap_err();
    assert!(e.to_string().contains("linux.seccomp.flags"), "{e}");
    let e = of(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"})).unwrap_err();
    assert!(e.to_string().contains("defaultAction"), "{e}");
    let e = of(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("syscalls[0].names"), "{e}");
    // A listener without NOTIFY rules has nothing to receive.
    let (_, l) = of(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a"})).unwrap();
    assert_eq!(l, None);
}
