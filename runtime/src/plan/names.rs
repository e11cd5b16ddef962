//! Kernel numbers for the names the OCI config uses: capabilities and
//! rlimits. Tables rather than libc constants so that the mapping is
//! visible and the same on every architecture.

use std::collections::HashSet;

use oci_spec::runtime::{Capability, PosixRlimitType};

use crate::error::{Error, Result};

/// `CAP_*` names in kernel order: the index is the capability number.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a `CAP_*` name.
pub(crate) fn capability_number(name: &str) -> Option<u32> {
    CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .map(|i| i as u32)
}

/// The name of a capability number.
pub fn capability_name(number: u32) -> Option<&'static str> {
    CAPABILITIES.get(number as usize).copied()
}

/// A set of OCI capabilities as a bit mask. `field` names the set.
pub(crate) fn capability_mask(field: &str, set: Option<&HashSet<Capability>>) -> Result<u64> {
    let mut mask = 0;
    for cap in set.into_iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let bit = capability_number(&name)
            .ok_or_else(|| Error::invalid(field, format!("unknown capability {name:?}")))?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// `RLIMIT_*` names in kernel order (`<asm-generic/resource.h>`).
const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// The resource number of an OCI rlimit type.
pub(crate) fn rlimit_number(typ: PosixRlimitType) -> Option<u32> {
    let name = serde_json::to_value(typ).ok()?;
    let name = name.as_str()?;
    RLIMITS.iter().position(|r| *r == name).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_numbers_match_the_kernel() {
        assert_eq!(capability_number("CAP_CHOWN"), Some(0));
        assert_eq!(capability_number("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(capability_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(capability_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(capability_name(29), Some("CAP_AUDIT_WRITE"));
    }

    #[test]
    fn capability_sets_become_masks() {
        let set: HashSet<_> = [Capability::Kill, Capability::AuditWrite].into();
        assert_eq!(
            capability_mask("x", Some(&set)).unwrap(),
            (1 << 5) | (1 << 29)
        );
        assert_eq!(capability_mask("x", None).unwrap(), 0);
    }

    #[test]
    fn rlimit_numbers_match_libc() {
        assert_eq!(
            rlimit_number(PosixRlimitType::RlimitNofile),
            Some(libc::RLIMIT_NOFILE)
        );
        assert_eq!(
            rlimit_number(PosixRlimitType::RlimitRttime),
            Some(libc::RLIMIT_RTTIME)
        );
        assert_eq!(
            rlimit_number(PosixRlimitType::RlimitCpu),
            Some(libc::RLIMIT_CPU)
        );
    }
}
