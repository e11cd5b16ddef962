//! [`Write`]: one cgroup file write, the unit of every resource plan, and
//! the value checks v1 and v2 share.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

/// One file to write in the container's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Write {
    /// v1: the controller whose hierarchy holds `file`. v2: the controller
    /// that must be enabled in the parent (`""` for core files).
    pub controller: &'static str,
    /// File name in the cgroup directory.
    pub file: String,
    /// What to write.
    pub value: String,
    /// The spec field it comes from, for errors.
    pub field: String,
    /// Written instead when `file` does not exist (e.g. `blkio.bfq.weight`
    /// on a kernel without CFQ's `blkio.weight`).
    pub fallback: Option<(String, String)>,
}

impl Write {
    pub fn new(
        controller: &'static str,
        file: impl Into<String>,
        value: impl ToString,
        field: impl Into<String>,
    ) -> Self {
        Write {
            controller,
            file: file.into(),
            value: value.to_string(),
            field: field.into(),
            fallback: None,
        }
    }

    pub fn or(mut self, file: impl Into<String>, value: impl ToString) -> Self {
        self.fallback = Some((file.into(), value.to_string()));
        self
    }
}

/// A byte limit: `-1` (unlimited) or positive.
pub(crate) fn byte_limit(field: &str, v: i64) -> Result<Option<i64>> {
    match v {
        -1 => Ok(None),
        v if v > 0 => Ok(Some(v)),
        v => Err(Error::invalid(
            field,
            format!("{v} is neither -1 (unlimited) nor a positive number of bytes"),
        )),
    }
}

/// The memory + swap limit must not be below the memory limit.
pub(crate) fn check_swap(limit: Option<i64>, swap: Option<i64>) -> Result<()> {
    if let (Some(Some(l)), Some(Some(s))) = (
        limit.map(|l| byte_limit("linux.resources.memory.limit", l).ok().flatten()),
        swap.map(|s| byte_limit("linux.resources.memory.swap", s).ok().flatten()),
    ) {
        if s < l {
            return Err(Error::invalid(
                "linux.resources.memory.swap",
                format!("memory+swap {s} is below the memory limit {l}"),
            ));
        }
    }
    Ok(())
}

/// A hugepage size as the spec writes it (`2MB`, `1GB`, `64KB`).
pub(crate) fn page_size(field: &str, s: &str) -> Result<String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !["KB", "MB", "GB"].contains(&unit)
    {
        return Err(Error::invalid(
            field,
            format!("page size {s:?} is not <N>KB, <N>MB or <N>GB"),
        ));
    }
    Ok(s.to_owned())
}

/// A block device number pair from the spec.
pub(crate) fn dev(field: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(Error::invalid(
            field,
            format!("device {major}:{minor} has a negative number"),
        ));
    }
    Ok(format!("{major}:{minor}"))
}

/// A cpuset list (`0-3,5`).
pub(crate) fn cpuset(field: &str, s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let num = |x: Option<&str>| {
                x.is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            };
            let a = ends.next();
            let b = ends.next();
            num(a) && (b.is_none() || num(b))
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::invalid(
            field,
            format!("{s:?} is not a cpu/node list like 0-3,5"),
        ))
    }
}

/// `pids.max`: the same file and values on v1 and v2.
pub(crate) fn pids(r: &LinuxResources, out: &mut Vec<Write>) {
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        out.push(Write::new(
            "pids",
            "pids.max",
            v,
            "linux.resources.pids.limit",
        ));
    }
}

/// `hugetlb.<size>.<file>` for each limit: `limit_in_bytes` on v1, `max`
/// on v2.
pub(crate) fn hugetlb(r: &LinuxResources, file: &str, out: &mut Vec<Write>) -> Result<()> {
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = page_size(&field, h.page_size())?;
        if h.limit() < 0 {
            return Err(Error::invalid(field, "negative limit"));
        }
        out.push(Write::new(
            "hugetlb",
            format!("hugetlb.{size}.{file}"),
            h.limit(),
            field,
        ));
    }
    Ok(())
}

/// rdma limits are refused on both versions.
pub(crate) fn refuse_rdma(r: &LinuxResources) -> Result<()> {
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::unsupported(
            "linux.resources.rdma",
            "rdma limits are not implemented",
        ));
    }
    Ok(())
}

/// `cpu.idle`, `cpuset.cpus` and `cpuset.mems`: the same files on v1 and v2.
pub(crate) fn cpu_idle_and_cpuset(
    c: &oci_spec::runtime::LinuxCpu,
    out: &mut Vec<Write>,
) -> Result<()> {
    if let Some(i) = c.idle() {
        out.push(Write::new("cpu", "cpu.idle", i, "linux.resources.cpu.idle"));
    }
    if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        let v = cpuset("linux.resources.cpu.cpus", s)?;
        out.push(Write::new(
            "cpuset",
            "cpuset.cpus",
            v,
            "linux.resources.cpu.cpus",
        ));
    }
    if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        let v = cpuset("linux.resources.cpu.mems", s)?;
        out.push(Write::new(
            "cpuset",
            "cpuset.mems",
            v,
            "linux.resources.cpu.mems",
        ));
    }
    Ok(())
}
