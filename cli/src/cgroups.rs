//! `pause`, `resume`, `update`, `events` and `ps`: the cgroup commands.
//! Each is a library call on a container found in the state dir.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::Context;
use corral::Runtime;
use corral::oci_spec::runtime::LinuxResources;
use serde_json::json;

/// `corral update` flags, as runc spells them.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Read the resources from this JSON file (`-` for stdin), in the
    /// shape of `linux.resources`; the flags below override it.
    #[arg(long = "resources", short = 'r')]
    resources: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit.
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// cpu shares (relative weight).
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// CFS quota in µs per period (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CFS period in µs.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// cpus the container may use (`0-3,5`).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (0 or -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10-1000).
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Container id.
    id: String,
}

/// `corral pause ID`.
pub async fn pause(rt: &Runtime, id: &str) -> anyhow::Result<i32> {
    rt.pause_by_id(id).await?;
    Ok(0)
}

/// `corral resume ID`.
pub async fn resume(rt: &Runtime, id: &str) -> anyhow::Result<i32> {
    rt.resume_by_id(id).await?;
    Ok(0)
}

/// `corral update [flags] ID`.
pub fn update(rt: &Runtime, args: UpdateArgs) -> anyhow::Result<i32> {
    let mut v = match args.resources.as_deref() {
        None => json!({}),
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(path).with_context(|| format!("read {path:?}"))?;
            }
            serde_json::from_str(&text).with_context(|| format!("parse {path:?}"))?
        }
    };
    let mut set = |section: &str, key: &str, value: serde_json::Value| {
        v[section][key] = value;
    };
    if let Some(m) = &args.memory {
        set("memory", "limit", json!(parse_bytes("--memory", m)?));
    }
    if let Some(m) = &args.memory_reservation {
        set(
            "memory",
            "reservation",
            json!(parse_bytes("--memory-reservation", m)?),
        );
    }
    if let Some(m) = &args.memory_swap {
        set("memory", "swap", json!(parse_bytes("--memory-swap", m)?));
    }
    if let Some(s) = args.cpu_shares {
        set("cpu", "shares", json!(s));
    }
    if let Some(q) = args.cpu_quota {
        set("cpu", "quota", json!(q));
    }
    if let Some(p) = args.cpu_period {
        set("cpu", "period", json!(p));
    }
    if let Some(c) = &args.cpuset_cpus {
        set("cpu", "cpus", json!(c));
    }
    if let Some(m) = &args.cpuset_mems {
        set("cpu", "mems", json!(m));
    }
    if let Some(p) = args.pids_limit {
        set("pids", "limit", json!(p));
    }
    if let Some(w) = args.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    let resources: LinuxResources =
        serde_json::from_value(v).context("the resources are not a linux.resources object")?;
    rt.update_by_id(&args.id, &resources)?;
    Ok(0)
}

/// `123`, `-1`, `64k`, `100m`, `2g` (binary units, as runc's).
fn parse_bytes(flag: &str, s: &str) -> anyhow::Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        _ => (lower, 0),
    };
    let n: i64 = num
        .parse()
        .with_context(|| format!("{flag}: {s:?} is not a size"))?;
    if n < 0 {
        return Ok(n);
    }
    n.checked_mul(1 << shift)
        .with_context(|| format!("{flag}: {s:?} is too large"))
}

/// `corral events [--stats] [--interval D] ID`: with `--stats`, one stats
/// event; otherwise a stats event every interval and an `oom` event when
/// the OOM kill count grows, until the container stops.
pub async fn events(rt: &Runtime, id: &str, stats: bool, interval: &str) -> anyhow::Result<i32> {
    let every = parse_interval(interval)?;
    let mut ooms = None;
    loop {
        let s = rt.stats_by_id(id)?;
        let mut lines = Vec::new();
        if ooms.is_some_and(|before| s.memory.oom_kills > before) {
            lines.push(json!({"type": "oom", "id": id}));
        }
        ooms = Some(s.memory.oom_kills);
        lines.push(json!({"type": "stats", "id": id, "data": s}));
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A reader that went away (`| head`) ends the stream quietly.
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return Ok(0);
            }
        }
        drop(out);
        if stats {
            return Ok(0);
        }
        tokio::time::sleep(every).await;
    }
}

/// `5s`, `500ms`, `1m`, or plain seconds.
fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow::anyhow!("--interval: {s:?} is not a duration like 5s or 500ms");
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// `corral ps [--format table|json] ID [PS_ARGS...]`: as runc, the json
/// format is the array of host pids in the container's cgroup; the table
/// is ps(1)'s own output (`ps -ef` by default) with the header and only
/// the rows whose PID column is one of them.
pub fn ps(rt: &Runtime, id: &str, format: &str, ps_args: &[String]) -> anyhow::Result<i32> {
    let pids = rt.pids_by_id(id)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<&str> = if ps_args.is_empty() {
        vec!["-ef"]
    } else {
        ps_args.iter().map(String::as_str).collect()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps(1)")?;
    if !out.status.success() {
        anyhow::bail!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{}", filter_ps(&text, &pids)?);
    Ok(0)
}

/// ps(1) output cut down to the header and the rows of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column (pass ps options that print one)")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_intervals_parse_like_runc() {
        assert_eq!(parse_bytes("--memory", "100m").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("--memory", "64KB").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("--memory", "-1").unwrap(), -1);
        assert!(parse_bytes("--memory", "x").is_err());
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("5").unwrap(), Duration::from_secs(5));
        assert!(parse_interval("5h").is_err());
    }

    #[test]
    fn ps_output_keeps_the_header_and_the_containers_rows() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 43 42 ps\n";
        assert_eq!(
            filter_ps(text, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sh\n"
        );
        assert!(filter_ps("UID CMD\n", &[1]).is_err());
    }
}
