//! `linux.resources` → cgroup v1 file writes. Pure: the plan is checked
//! and built here, applied by `hierarchy`.
//!
//! Writes come in an order the kernel accepts on a fresh cgroup: the
//! period before the quota, the memory limit before memory+swap (the
//! kernel requires memsw ≥ limit; `hierarchy::apply` retries the pair in
//! the other order when an update raises both).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::write::{
    Write, byte_limit, check_swap, cpu_idle_and_cpuset, dev, hugetlb, pids, refuse_rdma,
};
use crate::error::{Error, Result};

/// The writes for `r` on a v1 host.
pub(crate) fn plan(r: &LinuxResources) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    memory(r, &mut out)?;
    cpu(r, &mut out)?;
    pids(r, &mut out);
    blkio(r, &mut out)?;
    hugetlb(r, "limit_in_bytes", &mut out)?;
    refuse_rdma(r)?;
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(Write::new(
                "net_cls",
                "net_cls.classid",
                id,
                "linux.resources.network.classID",
            ));
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            out.push(Write::new(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                format!("linux.resources.network.priorities[{i}]"),
            ));
        }
    }
    if r.unified().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::unsupported(
            "linux.resources.unified",
            "unified (cgroup v2) keys need a cgroup v2 host; this one uses cgroup v1 controllers",
        ));
    }
    devices(r.devices().as_deref().unwrap_or(&[]), &mut out)?;
    Ok(out)
}

fn memory(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    check_swap(m.limit(), m.swap())?;
    if let Some(l) = m.limit() {
        let v = byte_limit("linux.resources.memory.limit", l)?.unwrap_or(-1);
        out.push(Write::new(
            "memory",
            "memory.limit_in_bytes",
            v,
            "linux.resources.memory.limit",
        ));
    }
    if let Some(s) = m.swap() {
        let v = byte_limit("linux.resources.memory.swap", s)?.unwrap_or(-1);
        out.push(Write::new(
            "memory",
            "memory.memsw.limit_in_bytes",
            v,
            "linux.resources.memory.swap",
        ));
    }
    if let Some(res) = m.reservation() {
        let v = byte_limit("linux.resources.memory.reservation", res)?.unwrap_or(-1);
        out.push(Write::new(
            "memory",
            "memory.soft_limit_in_bytes",
            v,
            "linux.resources.memory.reservation",
        ));
    }
    if m.kernel().is_some() {
        return Err(Error::unsupported(
            "linux.resources.memory.kernel",
            "kernel memory limits are deprecated by the runtime spec and not implemented",
        ));
    }
    if let Some(k) = m.kernel_tcp() {
        let v = byte_limit("linux.resources.memory.kernelTCP", k)?.unwrap_or(-1);
        out.push(Write::new(
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            v,
            "linux.resources.memory.kernelTCP",
        ));
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::invalid(
                "linux.resources.memory.swappiness",
                format!("{s} is above 100"),
            ));
        }
        out.push(Write::new(
            "memory",
            "memory.swappiness",
            s,
            "linux.resources.memory.swappiness",
        ));
    }
    if let Some(d) = m.disable_oom_killer() {
        out.push(Write::new(
            "memory",
            "memory.oom_control",
            u8::from(d),
            "linux.resources.memory.disableOOMKiller",
        ));
    }
    if let Some(h) = m.use_hierarchy() {
        out.push(Write::new(
            "memory",
            "memory.use_hierarchy",
            u8::from(h),
            "linux.resources.memory.useHierarchy",
        ));
    }
    Ok(())
}

fn cpu(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
    let Some(c) = r.cpu() else { return Ok(()) };
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        out.push(Write::new(
            "cpu",
            "cpu.shares",
            s,
            "linux.resources.cpu.shares",
        ));
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&p) {
            return Err(Error::invalid(
                "linux.resources.cpu.period",
                format!("{p} µs is outside 1000..=1000000"),
            ));
        }
        out.push(Write::new(
            "cpu",
            "cpu.cfs_period_us",
            p,
            "linux.resources.cpu.period",
        ));
    }
    if let Some(q) = c.quota().filter(|q| *q != 0) {
        if q < 1000 && q != -1 {
            return Err(Error::invalid(
                "linux.resources.cpu.quota",
                format!("{q} µs is neither -1 (unlimited) nor at least 1000"),
            ));
        }
        out.push(Write::new(
            "cpu",
            "cpu.cfs_quota_us",
            q,
            "linux.resources.cpu.quota",
        ));
    }
    if let Some(b) = c.burst() {
        out.push(Write::new(
            "cpu",
            "cpu.cfs_burst_us",
            b,
            "linux.resources.cpu.burst",
        ));
    }
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        out.push(Write::new(
            "cpu",
            "cpu.rt_period_us",
            p,
            "linux.resources.cpu.realtimePeriod",
        ));
    }
    if let Some(rt) = c.realtime_runtime().filter(|r| *r != 0) {
        out.push(Write::new(
            "cpu",
            "cpu.rt_runtime_us",
            rt,
            "linux.resources.cpu.realtimeRuntime",
        ));
    }
    cpu_idle_and_cpuset(c, out)
}

fn blkio(r: &LinuxResources, out: &mut Vec<Write>) -> Result<()> {
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
        // Kernels without CFQ have only BFQ's file.
        out.push(
            Write::new("blkio", "blkio.weight", w, "linux.resources.blockIO.weight")
                .or("blkio.bfq.weight", w),
        );
    }
    if let Some(w) = b.leaf_weight() {
        let w = weight("linux.resources.blockIO.leafWeight", w)?;
        out.push(Write::new(
            "blkio",
            "blkio.leaf_weight",
            w,
            "linux.resources.blockIO.leafWeight",
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("linux.resources.blockIO.weightDevice[{i}]");
        let id = dev(&field, d.major(), d.minor())?;
        if let Some(w) = d.weight() {
            let w = weight(&field, w)?;
            out.push(
                Write::new("blkio", "blkio.weight_device", format!("{id} {w}"), &field)
                    .or("blkio.bfq.weight_device", format!("{id} {w}")),
            );
        }
        if let Some(w) = d.leaf_weight() {
            let w = weight(&field, w)?;
            out.push(Write::new(
                "blkio",
                "blkio.leaf_weight_device",
                format!("{id} {w}"),
                &field,
            ));
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, file, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let field = format!("linux.resources.blockIO.{name}[{i}]");
            let id = dev(&field, d.major(), d.minor())?;
            out.push(Write::new(
                "blkio",
                file,
                format!("{id} {}", d.rate()),
                field,
            ));
        }
    }
    Ok(())
}

/// Devices every container gets, as runc and crun allow them: the nodes
/// `corral-init` makes in `/dev` (plus `m` on all, so that `mknod` of
/// them works). They are inserted right after each deny-all rule, so a
/// later spec rule can still deny one of them (`deny c 1:3` works).
const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The device allow/deny list, in spec order, as `devices.allow` and
/// `devices.deny` writes.
pub(crate) fn devices(rules: &[LinuxDeviceCgroup], out: &mut Vec<Write>) -> Result<()> {
    for (allow, line, field) in device_lines(rules)? {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push(Write::new("devices", file, line, field));
    }
    Ok(())
}

/// The rules as `(allow, "type major:minor access", field)`, with the
/// default allows inserted after each deny-all: what v1 writes and what
/// the v2 device program enforces.
pub(crate) fn device_lines(rules: &[LinuxDeviceCgroup]) -> Result<Vec<(bool, String, String)>> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let line = device_rule(&field, rule)?;
        let deny_all = !rule.allow() && line == "a *:* rwm";
        out.push((rule.allow(), line, field.clone()));
        if deny_all {
            out.extend(
                DEFAULT_ALLOWED
                    .iter()
                    .map(|d| (true, (*d).to_owned(), field.clone())),
            );
        }
    }
    Ok(out)
}

/// One rule as the kernel's `type major:minor access` line.
pub(crate) fn device_rule(field: &str, rule: &LinuxDeviceCgroup) -> Result<String> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => {
            return Err(Error::invalid(
                field,
                "type p (fifo) is not a device cgroup type",
            ));
        }
    };
    let num = |n: Option<i64>| match n {
        None | Some(-1) => Ok("*".to_owned()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(Error::invalid(field, format!("device number {n}"))),
    };
    let access = rule.access().as_deref().unwrap_or("rwm");
    let access = if access.is_empty() { "rwm" } else { access };
    if !access.chars().all(|c| "rwm".contains(c)) {
        return Err(Error::invalid(
            field,
            format!("access {access:?} is not a combination of r, w and m"),
        ));
    }
    Ok(format!(
        "{typ} {}:{} {access}",
        num(rule.major())?,
        num(rule.minor())?
    ))
}
