//! Step Sysctl: write the spec's kernel parameters under `/proc/sys`, in the
//! container's procfs (after pivot_root, so namespaced ones apply to the
//! container's namespaces).
//!
//! A key is dotted (`net.ipv4.ip_forward`) and must name a file under
//! `/proc/sys`: one with a `/` or a `..` is refused, and the file is opened
//! with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` from `/proc/sys` all the same.

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
use rustix::io::{Errno, write};

use crate::error::{Error, Result};

pub fn apply(sysctls: &[(String, String)]) -> Result<()> {
    sysctls
        .iter()
        .try_for_each(|(key, value)| write_sysctl(key, value))
}

fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let relative = sysctl_path(key).ok_or_else(|| Error::SysctlKey {
        key: key.to_owned(),
    })?;
    let fail = |errno| Error::Sysctl {
        key: key.to_owned(),
        errno,
    };
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let proc_sys = rustix::fs::open("/proc/sys", dir_flags, Mode::empty()).map_err(fail)?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let file = openat2(
        &proc_sys,
        &relative,
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    )
    .map_err(fail)?;
    write_all(&file, value.as_bytes()).map_err(fail)
}

/// `net.ipv4.ip_forward` -> `net/ipv4/ip_forward`; `None` for a key that
/// is empty, has an empty component, contains `/`, or a `..` component.
pub fn sysctl_path(key: &str) -> Option<String> {
    if key.contains('/') {
        return None;
    }
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts.join("/"))
}

fn write_all(file: &std::os::fd::OwnedFd, mut bytes: &[u8]) -> rustix::io::Result<()> {
    while !bytes.is_empty() {
        match write(file, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_key_becomes_a_path() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").as_deref(),
            Some("net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("kernel.msgmax").as_deref(),
            Some("kernel/msgmax")
        );
    }

    #[test]
    fn keys_that_could_escape_proc_sys_are_rejected() {
        for key in [
            "",
            "net/ipv4",
            "..",
            "net...x",
            "net..ipv4",
            ".net",
            "net.",
            "../../etc/passwd",
        ] {
            assert_eq!(sysctl_path(key), None, "{key:?}");
        }
    }
}
