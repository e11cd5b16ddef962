//! Resource usage in one typed [`Stats`], the same on v1 and v2, with
//! runc's JSON names (what `corral events --stats` prints), and the OOM
//! kill counter `wait()` reports from.
//!
//! Units are runc's: cpu times in nanoseconds, memory in bytes. A counter
//! a host does not have (v2 without the memory controller, v1 without
//! hugetlb) is 0.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CgroupPaths;

/// Usage counters of one container's cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// cpu time and throttling.
    pub cpu: CpuStats,
    /// memory use and limits.
    pub memory: MemoryStats,
    /// process count.
    pub pids: PidsStats,
    /// block I/O (`io` on v2).
    pub blkio: BlkioStats,
    /// per page size (`2MB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// cpu counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
}

/// cpu time, ns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total.
    pub total: u64,
    /// Per cpu (v1 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// In the kernel.
    pub kernel: u64,
    /// In user space.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total throttled time, ns.
    pub throttled_time: u64,
}

/// memory counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Page cache bytes.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (v1), swap (v2).
    pub swap: MemoryEntry,
    /// Processes killed by the OOM killer in this cgroup.
    #[serde(rename = "oomKills")]
    pub oom_kills: u64,
    /// `memory.stat`, as the kernel names its keys.
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Limit (`u64::MAX` when unlimited).
    pub limit: u64,
    /// Current use.
    pub usage: u64,
    /// Peak use.
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// pids counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Processes and threads now.
    pub current: u64,
    /// `pids.max` (0 when unlimited).
    pub limit: u64,
}

/// Block I/O counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlkioStats {
    /// Bytes per device and operation.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations per device and operation.
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One block I/O counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`.
    pub op: String,
    /// The count.
    pub value: u64,
}

/// One hugetlb size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    /// Current use, bytes.
    pub usage: u64,
    /// Peak use (v1), bytes.
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Reads every counter.
pub(crate) fn read(paths: &CgroupPaths) -> Stats {
    if paths.v2 {
        match paths.dirs.first() {
            Some(d) => read_v2(&d.path),
            None => Stats::default(),
        }
    } else {
        read_v1(paths)
    }
}

/// OOM kills recorded for the cgroup: v1 `memory.oom_control`'s
/// `oom_kill`, v2 `memory.events`' `oom_kill`. `None` without a memory
/// controller.
pub(crate) fn oom_kills(paths: &CgroupPaths) -> Option<u64> {
    let dir = paths.dir_of("memory")?;
    let file = if paths.v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    keyed(&text).get("oom_kill").copied()
}

fn num(dir: &Path, file: &str) -> u64 {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| parse_num(s.trim()))
        .unwrap_or(0)
}

/// A counter or limit; `max` (v2 unlimited) is `u64::MAX`.
fn parse_num(s: &str) -> Option<u64> {
    if s == "max" {
        Some(u64::MAX)
    } else {
        s.parse().ok()
    }
}

/// `key value` lines.
pub(crate) fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), parse_num(v.trim())?))
        })
        .collect()
}

fn read_file(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

fn read_v1(paths: &CgroupPaths) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = paths.dir_of("cpuacct") {
        s.cpu.usage.total = num(d, "cpuacct.usage");
        s.cpu.usage.percpu = read_file(d, "cpuacct.usage_percpu")
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // cpuacct.stat is in USER_HZ ticks.
        let ticks = keyed(&read_file(d, "cpuacct.stat"));
        let tick_ns = 1_000_000_000 / clock_ticks();
        s.cpu.usage.user = ticks.get("user").copied().unwrap_or(0) * tick_ns;
        s.cpu.usage.kernel = ticks.get("system").copied().unwrap_or(0) * tick_ns;
    }
    if let Some(d) = paths.dir_of("cpu") {
        let st = keyed(&read_file(d, "cpu.stat"));
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = paths.dir_of("memory") {
        let entry = |prefix: &str| MemoryEntry {
            limit: num(d, &format!("{prefix}.limit_in_bytes")),
            usage: num(d, &format!("{prefix}.usage_in_bytes")),
            max: num(d, &format!("{prefix}.max_usage_in_bytes")),
            failcnt: num(d, &format!("{prefix}.failcnt")),
        };
        s.memory.usage = entry("memory");
        s.memory.swap = entry("memory.memsw");
        s.memory.raw = keyed(&read_file(d, "memory.stat"));
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        s.memory.oom_kills = oom_kills(paths).unwrap_or(0);
    }
    if let Some(d) = paths.dir_of("pids") {
        s.pids.current = num(d, "pids.current");
        s.pids.limit = match num(d, "pids.max") {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Some(d) = paths.dir_of("blkio") {
        s.blkio.io_service_bytes_recursive =
            blkio_v1(&read_file(d, "blkio.throttle.io_service_bytes_recursive"));
        s.blkio.io_serviced_recursive =
            blkio_v1(&read_file(d, "blkio.throttle.io_serviced_recursive"));
    }
    if let Some(d) = paths.dir_of("hugetlb") {
        for size in hugetlb_sizes(d, ".usage_in_bytes") {
            let f = |x: &str| num(d, &format!("hugetlb.{size}.{x}"));
            s.hugetlb.insert(
                size.clone(),
                HugetlbStats {
                    usage: f("usage_in_bytes"),
                    max: f("max_usage_in_bytes"),
                    failcnt: f("failcnt"),
                },
            );
        }
    }
    s
}

fn read_v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = keyed(&read_file(d, "cpu.stat"));
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    s.memory.usage = MemoryEntry {
        limit: num(d, "memory.max"),
        usage: num(d, "memory.current"),
        max: num(d, "memory.peak"),
        failcnt: keyed(&read_file(d, "memory.events"))
            .get("max")
            .copied()
            .unwrap_or(0),
    };
    s.memory.swap = MemoryEntry {
        limit: num(d, "memory.swap.max"),
        usage: num(d, "memory.swap.current"),
        max: num(d, "memory.swap.peak"),
        failcnt: 0,
    };
    s.memory.raw = keyed(&read_file(d, "memory.stat"));
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    s.memory.oom_kills = keyed(&read_file(d, "memory.events"))
        .get("oom_kill")
        .copied()
        .unwrap_or(0);
    s.pids.current = num(d, "pids.current");
    s.pids.limit = match num(d, "pids.max") {
        u64::MAX => 0,
        n => n,
    };
    let (bytes, ops) = io_v2(&read_file(d, "io.stat"));
    s.blkio.io_service_bytes_recursive = bytes;
    s.blkio.io_serviced_recursive = ops;
    for size in hugetlb_sizes(d, ".current") {
        let f = |x: &str| num(d, &format!("hugetlb.{size}.{x}"));
        let events = keyed(&read_file(d, &format!("hugetlb.{size}.events")));
        s.hugetlb.insert(
            size.clone(),
            HugetlbStats {
                usage: f("current"),
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    s
}

/// Page sizes that have a `hugetlb.<size><suffix>` file in `dir`.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_owned())
        })
        .collect();
    out.sort();
    out
}

/// v1 `8:0 Read 1234` lines.
pub(crate) fn blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (maj, min) = it.next()?.split_once(':')?;
            let op = it.next()?.to_owned();
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...` lines, as runc maps them.
pub(crate) fn io_v2(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ops) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ops, "Read"),
                "wios" => (&mut ops, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    (bytes, ops)
}

fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}
