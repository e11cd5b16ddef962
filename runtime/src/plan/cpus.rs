//! CPU and NUMA node lists (`"0-3,7"`, the kernel's list format) and
//! `process.execCPUAffinity`. Parsing is pure; the host's possible CPUs and
//! nodes are read from sysfs by [`possible_cpus`] and [`possible_nodes`]
//! and passed in.

use corral_protocol::CpuAffinity;
use oci_spec::runtime::ExecCPUAffinity;

use crate::error::{Error, Result};

/// Parses a list such as `0-3,7` strictly: decimal numbers, ranges with
/// `first <= last`, no empty parts, no spaces. Each number must be below
/// `limit`; the result is sorted and without duplicates.
pub(crate) fn parse_list(field: &str, text: &str, limit: u32, what: &str) -> Result<Vec<u32>> {
    let bad = |why: String| Error::invalid(field, format!("{text:?}: {why}"));
    let number = |s: &str| -> Result<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("{s:?} is not a number")));
        }
        s.parse::<u32>()
            .map_err(|_| bad(format!("{s} is too large")))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if first > last {
            return Err(bad(format!("range {first}-{last} is reversed")));
        }
        if last >= limit {
            return Err(bad(format!(
                "{what} {last} does not exist on this host (possible: 0-{})",
                limit.saturating_sub(1)
            )));
        }
        out.extend(first..=last);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One past the highest number in a sysfs list file such as
/// `/sys/devices/system/cpu/possible` (`0-1` gives 2).
fn sysfs_limit(path: &str) -> Result<u32> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::sys(format!("read {path:?}"), e))?;
    let list = parse_list(path, text.trim(), u32::MAX, "entry")?;
    Ok(list.last().map_or(0, |&n| n + 1))
}

/// One past the host's highest possible CPU.
pub(crate) fn possible_cpus() -> Result<u32> {
    sysfs_limit("/sys/devices/system/cpu/possible")
}

/// One past the host's highest possible NUMA node.
pub(crate) fn possible_nodes() -> Result<u32> {
    sysfs_limit("/sys/devices/system/node/possible")
}

/// `process.execCPUAffinity`, checked against `cpu_limit` (one past the
/// highest possible CPU). An empty string counts as absent, as the spec
/// says for `final`.
pub(crate) fn exec_affinity(
    a: Option<&ExecCPUAffinity>,
    cpu_limit: impl Fn() -> Result<u32>,
) -> Result<Option<CpuAffinity>> {
    let Some(a) = a else { return Ok(None) };
    let limit = cpu_limit()?;
    let list = |field: &str, v: &Option<String>| -> Result<Option<Vec<u32>>> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => parse_list(field, text, limit, "CPU").map(Some),
        }
    };
    Ok(Some(CpuAffinity {
        initial: list("process.execCPUAffinity.initial", a.initial())?,
        final_cpus: list("process.execCPUAffinity.final", a.cpu_affinity_final())?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<Vec<u32>>) -> String {
        match r.unwrap_err() {
            Error::InvalidSpec { field, .. } => field,
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn lists_parse_to_sorted_cpu_numbers() {
        assert_eq!(parse_list("f", "0-1,3", 4, "CPU").unwrap(), vec![0, 1, 3]);
        assert_eq!(
            parse_list("f", "3,0,1-1,0", 4, "CPU").unwrap(),
            vec![0, 1, 3]
        );
        assert_eq!(parse_list("f", "7", 8, "CPU").unwrap(), vec![7]);
    }

    #[test]
    fn bad_lists_are_refused_naming_the_field() {
        for bad in [
            "", "1-", "-1", "a", "1,,2", "2-1", "0-4", "4", " 1", "1 ", "0x1", "+1",
        ] {
            assert_eq!(
                field_of(parse_list("x.final", bad, 4, "CPU")),
                "x.final",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn exec_affinity_names_initial_and_final() {
        let a: ExecCPUAffinity = serde_json::from_str(r#"{"initial":"0-1","final":"9"}"#).unwrap();
        let e = exec_affinity(Some(&a), || Ok(2)).unwrap_err();
        assert!(
            matches!(e, Error::InvalidSpec { ref field, .. } if field == "process.execCPUAffinity.final"),
            "{e:?}"
        );
        let a: ExecCPUAffinity = serde_json::from_str(r#"{"initial":"5"}"#).unwrap();
        let e = exec_affinity(Some(&a), || Ok(2)).unwrap_err();
        assert!(
            matches!(e, Error::InvalidSpec { ref field, .. } if field == "process.execCPUAffinity.initial"),
            "{e:?}"
        );
        let a: ExecCPUAffinity = serde_json::from_str(r#"{"initial":"1"}"#).unwrap();
        let got = exec_affinity(Some(&a), || Ok(2)).unwrap().unwrap();
        assert_eq!((got.initial, got.final_cpus), (Some(vec![1]), None));
    }
}
