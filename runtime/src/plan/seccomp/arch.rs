//! The architectures a profile may name: their audit arch (what the
//! kernel puts in `seccomp_data.arch`), their syscall table (from the
//! `syscalls` crate) and the width of their arguments.
//!
//! x32 shares `AUDIT_ARCH_X86_64` with x86_64; its syscall numbers carry
//! `__X32_SYSCALL_BIT` (0x40000000), and the compiler tells the two apart
//! by that bit. Architectures without a table here (s390 31-bit, mips n32,
//! parisc, m68k, superh) are refused.

use std::str::FromStr;

use oci_spec::runtime::Arch;

/// `__X32_SYSCALL_BIT` (asm/unistd.h).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `AUDIT_ARCH_*` (linux/audit.h): `EM_*` | `__AUDIT_ARCH_64BIT`
/// (0x80000000) | `__AUDIT_ARCH_LE` (0x40000000).
pub(crate) mod audit {
    pub(crate) const X86_64: u32 = 0xC000_003E;
    pub(crate) const I386: u32 = 0x4000_0003;
    pub(crate) const AARCH64: u32 = 0xC000_00B7;
    pub(crate) const ARM: u32 = 0x4000_0028;
    pub(crate) const MIPS: u32 = 0x0000_0008;
    pub(crate) const MIPSEL: u32 = 0x4000_0008;
    pub(crate) const MIPS64: u32 = 0x8000_0008;
    pub(crate) const MIPSEL64: u32 = 0xC000_0008;
    pub(crate) const PPC: u32 = 0x0000_0014;
    pub(crate) const PPC64: u32 = 0x8000_0015;
    pub(crate) const PPC64LE: u32 = 0xC000_0015;
    pub(crate) const S390X: u32 = 0x8000_0016;
    pub(crate) const RISCV64: u32 = 0xC000_00F3;
    pub(crate) const LOONGARCH64: u32 = 0xC000_0102;
}

/// An architecture's syscall table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Table {
    X86_64,
    X32,
    X86,
    Aarch64,
    Arm,
    Mips,
    Mips64,
    Powerpc,
    Powerpc64,
    S390x,
    Riscv64,
    Loongarch64,
}

/// One architecture of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ArchInfo {
    /// `seccomp_data.arch` for its syscalls.
    pub audit: u32,
    pub table: Table,
}

impl ArchInfo {
    /// Whether its syscall arguments are 32 bits wide (the kernel
    /// zero-extends them into `seccomp_data.args`), so only the low word
    /// is compared, against the low 32 bits of the rule's value, as
    /// libseccomp does for 32-bit architectures.
    pub(crate) fn is_32bit(self) -> bool {
        self.audit & 0x8000_0000 == 0
    }

    /// The syscall number of `name` here, `None` when this architecture
    /// has no such call.
    pub(crate) fn number(self, name: &str) -> Option<u32> {
        fn id<T: FromStr>(name: &str, f: impl Fn(T) -> i32) -> Option<u32> {
            T::from_str(name).ok().map(|s| f(s) as u32)
        }
        use syscalls as s;
        match self.table {
            Table::X86_64 => id(name, |s: s::x86_64::Sysno| s.id()),
            Table::X32 => x32_number(name),
            Table::X86 => id(name, |s: s::x86::Sysno| s.id()),
            Table::Aarch64 => id(name, |s: s::aarch64::Sysno| s.id()),
            Table::Arm => id(name, |s: s::arm::Sysno| s.id()),
            Table::Mips => id(name, |s: s::mips::Sysno| s.id()),
            Table::Mips64 => id(name, |s: s::mips64::Sysno| s.id()),
            Table::Powerpc => id(name, |s: s::powerpc::Sysno| s.id()),
            Table::Powerpc64 => id(name, |s: s::powerpc64::Sysno| s.id()),
            Table::S390x => id(name, |s: s::s390x::Sysno| s.id()),
            Table::Riscv64 => id(name, |s: s::riscv64::Sysno| s.id()),
            Table::Loongarch64 => id(name, |s: s::loongarch64::Sysno| s.id()),
        }
    }
}

/// The calls x32 numbers apart from x86_64: entries 512-547 of the
/// kernel's `arch/x86/entry/syscalls/syscall_64.tbl` (ABI `x32`), which
/// the `syscalls` crate does not list. Every other x32 call uses the
/// x86_64 number; both carry `__X32_SYSCALL_BIT`.
const X32_ONLY: [(&str, u32); 36] = [
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

fn x32_number(name: &str) -> Option<u32> {
    let nr = match X32_ONLY.iter().find(|(n, _)| *n == name) {
        Some((_, nr)) => *nr,
        None => syscalls::x86_64::Sysno::from_str(name).ok()?.id() as u32,
    };
    Some(nr | X32_SYSCALL_BIT)
}

/// The host's own architecture (`SCMP_ARCH_NATIVE`, and the only one of a
/// profile without `architectures`).
pub(crate) fn native() -> ArchInfo {
    #[cfg(target_arch = "x86_64")]
    let a = (audit::X86_64, Table::X86_64);
    #[cfg(target_arch = "aarch64")]
    let a = (audit::AARCH64, Table::Aarch64);
    ArchInfo {
        audit: a.0,
        table: a.1,
    }
}

/// `arch` of the spec, or `None` when corral has no syscall table for it.
pub(crate) fn lookup(arch: Arch) -> Option<ArchInfo> {
    let (audit, table) = match arch {
        Arch::ScmpArchNative => return Some(native()),
        Arch::ScmpArchX86_64 => (audit::X86_64, Table::X86_64),
        Arch::ScmpArchX32 => (audit::X86_64, Table::X32),
        Arch::ScmpArchX86 => (audit::I386, Table::X86),
        Arch::ScmpArchAarch64 => (audit::AARCH64, Table::Aarch64),
        Arch::ScmpArchArm => (audit::ARM, Table::Arm),
        Arch::ScmpArchMips => (audit::MIPS, Table::Mips),
        Arch::ScmpArchMipsel => (audit::MIPSEL, Table::Mips),
        Arch::ScmpArchMips64 => (audit::MIPS64, Table::Mips64),
        Arch::ScmpArchMipsel64 => (audit::MIPSEL64, Table::Mips64),
        Arch::ScmpArchPpc => (audit::PPC, Table::Powerpc),
        Arch::ScmpArchPpc64 => (audit::PPC64, Table::Powerpc64),
        Arch::ScmpArchPpc64le => (audit::PPC64LE, Table::Powerpc64),
        Arch::ScmpArchS390x => (audit::S390X, Table::S390x),
        Arch::ScmpArchRiscv64 => (audit::RISCV64, Table::Riscv64),
        Arch::ScmpArchLoongarch64 => (audit::LOONGARCH64, Table::Loongarch64),
        _ => return None,
    };
    Some(ArchInfo { audit, table })
}
