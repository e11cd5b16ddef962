//! `linux.resources` → cgroup v2 file writes. Pure: the plan is checked
//! and built here, applied by `hierarchy`. Conversions follow runc's
//! (`cpu.shares` → `cpu.weight`, blkio weights → `io.weight`), so the
//! same spec means the same thing on both runtimes.
//!
//! v1-only fields with no v2 file (`swappiness`, `disableOOMKiller`,
//! `kernelTCP`, realtime cpu, `leafWeight`, `network`) are refused with
//! [`Error::Unsupported`]; device rules need an eBPF program, which is not
//! implemented yet, and are refused too.

use oci_spec::runtime::LinuxResources;

use super::write::{
    Write, byte_limit, check_swap, cpu_idle_and_cpuset, dev, hugetlb, pids, refuse_rdma,
};
use crate::error::{Error, Result};

/// The writes for `r` on a v2 host.
pub(crate) fn plan(r: &LinuxResources) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    memory(r, &mut out)?;
    cpu(r, &mut out)?;
    pids(r, &mut out);
    io(r, &mut out)?;
    hugetlb(r, "max", &mut out)?;
    refuse_rdma(r)?;
    if r.network().is_some() {
        return Err(unsupported("linux.resources.network", "net_cls/net_prio"));
    }
    if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
        let lines: Vec<(bool, String)> = super::v1::device_lines(rules)?
            .into_iter()
            .map(|(allow, line, _)| (allow, line))
            .collect();
        let encoded = super::device_program::encode(&lines);
        // Compiled now so that a bad rule fails before anything is made.
        super::device_program::compile(&encoded)?;
        out.push(Write::new(
            "",
            super::device_program::PSEUDO_FILE,
            encoded,
            "linux.resources.devices",
        ));
    }
    unified(r, &mut out)?;
    Ok(out)
}

fn unsupported(field: &str, what: &str) -> Error {
    Error::unsupported(field, format!("cgroup v2 has no {what} equivalent"))
}

fn max_or(v: Option<i64>) -> String {
    v.map_or_else(|| "max".to_owned(), |v| v.to_string())
}

fn memory(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    check_swap(m.limit(), m.swap())?;
    let limit = match m.limit() {
        Some(l) => Some(byte_limit("linux.resources.memory.limit", l)?),
        None => None,
    };
    if let Some(l) = limit {
        out.push(Write::new(
            "memory",
            "memory.max",
            max_or(l),
            "linux.resources.memory.limit",
        ));
    }
    if let Some(s) = m.swap() {
        // The spec's swap is memory+swap; v2's memory.swap.max is swap alone.
        let v = match (
            byte_limit("linux.resources.memory.swap", s)?,
            limit.flatten(),
        ) {
            (None, _) => "max".to_owned(),
            (Some(s), Some(l)) => (s - l).to_string(),
            (Some(_), None) => {
                return Err(Error::invalid(
                    "linux.resources.memory.swap",
                    "a swap limit on cgroup v2 needs a memory limit too",
                ));
            }
        };
        out.push(Write::new(
            "memory",
            "memory.swap.max",
            v,
            "linux.resources.memory.swap",
        ));
    }
    if let Some(res) = m.reservation() {
        let v = byte_limit("linux.resources.memory.reservation", res)?;
        out.push(Write::new(
            "memory",
            "memory.low",
            v.unwrap_or(0),
            "linux.resources.memory.reservation",
        ));
    }
    if m.kernel().is_some() {
        return Err(Error::unsupported(
            "linux.resources.memory.kernel",
            "kernel memory limits are deprecated by the runtime spec and not implemented",
        ));
    }
    if m.kernel_tcp().is_some() {
        return Err(unsupported("linux.resources.memory.kernelTCP", "kmem.tcp"));
    }
    if m.swappiness().is_some() {
        return Err(unsupported(
            "linux.resources.memory.swappiness",
            "swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            "linux.resources.memory.disableOOMKiller",
            "oom_control",
        ));
    }
    Ok(())
}

/// runc's conversion of v1 `cpu.shares` (2..262144) to `cpu.weight`
/// (1..10000).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

fn cpu(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let Some(c) = r.cpu() else { return Ok(()) };
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        out.push(Write::new(
            "cpu",
            "cpu.weight",
            shares_to_weight(s),
            "linux.resources.cpu.shares",
        ));
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if let Some(p) = period {
        if !(1000..=1_000_000).contains(&p) {
            return Err(Error::invalid(
                "linux.resources.cpu.period",
                format!("{p} µs is outside 1000..=1000000"),
            ));
        }
    }
    if let Some(q) = quota {
        if q < 1000 && q != -1 {
            return Err(Error::invalid(
                "linux.resources.cpu.quota",
                format!("{q} µs is neither -1 (unlimited) nor at least 1000"),
            ));
        }
    }
    if quota.is_some() || period.is_some() {
        let q = quota
            .filter(|q| *q > 0)
            .map_or("max".to_owned(), |q| q.to_string());
        let field = if quota.is_some() {
            "linux.resources.cpu.quota"
        } else {
            "linux.resources.cpu.period"
        };
        out.push(Write::new(
            "cpu",
            "cpu.max",
            format!("{q} {}", period.unwrap_or(100_000)),
            field,
        ));
    }
    if let Some(b) = c.burst() {
        out.push(Write::new(
            "cpu",
            "cpu.max.burst",
            b,
            "linux.resources.cpu.burst",
        ));
    }
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return Err(unsupported(
            "linux.resources.cpu.realtimeRuntime",
            "realtime cpu",
        ));
    }
    cpu_idle_and_cpuset(c, out)
}

/// runc's conversion of a blkio weight (10..1000) to `io.weight`
/// (1..10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

fn io(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let Some(b) = r.block_io() else { return Ok(()) };
    let weight = |field: &str, w: u16| {
        if (10..=1000).contains(&w) {
            Ok(w)
        } else {
            Err(Error::invalid(field, format!("{w} is outside 10..=1000")))
        }
    };
    if let Some(w) = b.weight() {
        let w = weight("linux.resources.blockIO.weight", w)?;
        out.push(
            Write::new(
                "io",
                "io.bfq.weight",
                format!("default {w}"),
                "linux.resources.blockIO.weight",
            )
            .or("io.weight", format!("default {}", blkio_to_io_weight(w))),
        );
    }
    if b.leaf_weight().is_some() {
        return Err(unsupported(
            "linux.resources.blockIO.leafWeight",
            "leaf weight",
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("linux.resources.blockIO.weightDevice[{i}]");
        let id = dev(&field, d.major(), d.minor())?;
        if d.leaf_weight().is_some() {
            return Err(unsupported(&field, "leaf weight"));
        }
        if let Some(w) = d.weight() {
            let w = weight(&field, w)?;
            out.push(
                Write::new("io", "io.bfq.weight", format!("{id} {w}"), &field)
                    .or("io.weight", format!("{id} {}", blkio_to_io_weight(w))),
            );
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, key, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let field = format!("linux.resources.blockIO.{name}[{i}]");
            let id = dev(&field, d.major(), d.minor())?;
            let rate = if d.rate() == 0 {
                "max".to_owned()
            } else {
                d.rate().to_string()
            };
            out.push(Write::new(
                "io",
                "io.max",
                format!("{id} {key}={rate}"),
                field,
            ));
        }
    }
    Ok(())
}

/// `unified`: written as given, after everything else (so a key can
/// override a converted value), sorted for a stable order. A key must be
/// a plain `<controller>.<name>` file; the files that move processes or
/// change the tree are refused.
fn unified(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let mut keys: Vec<_> = r.unified().iter().flatten().collect();
    keys.sort();
    for (key, value) in keys {
        let field = format!("linux.resources.unified[{key:?}]");
        let Some((controller, name)) = key.split_once('.') else {
            return Err(Error::invalid(field, "not a <controller>.<name> file"));
        };
        let bad_name = name.is_empty()
            || controller.is_empty()
            || key.contains('/')
            || key.contains('\0')
            || key.starts_with('.');
        let forbidden = [
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
            "cgroup.type",
            "cgroup.kill",
            "cgroup.freeze",
        ]
        .contains(&key.as_str());
        if bad_name || forbidden {
            return Err(Error::invalid(
                field,
                "not a resource file corral may write",
            ));
        }
        let controller = match controller {
            "memory" => "memory",
            "cpu" => "cpu",
            "cpuset" => "cpuset",
            "io" => "io",
            "pids" => "pids",
            "hugetlb" => "hugetlb",
            "rdma" => "rdma",
            "misc" => "misc",
            _ => "",
        };
        out.push(Write::new(controller, key.as_str(), value, field));
    }
    Ok(())
}
