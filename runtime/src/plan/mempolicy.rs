//! `linux.memoryPolicy` to the init's [`MemPolicy`] for `set_mempolicy(2)`,
//! with the kernel's rules checked at `create` so that a bad value is
//! refused naming its field (`mpol_new` and `sanitize_mpol_flags` in
//! mm/mempolicy.c): nodes are forbidden for `MPOL_DEFAULT` and
//! `MPOL_LOCAL`, required for the others except `MPOL_PREFERRED` (empty
//! means local allocation); `MPOL_F_STATIC_NODES` and
//! `MPOL_F_RELATIVE_NODES` exclude each other and need nodes;
//! `MPOL_F_NUMA_BALANCING` goes with `MPOL_BIND` or `MPOL_PREFERRED_MANY`.
//!
//! Pure but for the host's possible nodes, passed in; the init applies the
//! result (Step `memory_policy`).

use corral_protocol::MemPolicy;
use oci_spec::runtime::{
    LinuxMemoryPolicy, MemoryPolicyFlagType as Flag, MemoryPolicyModeType as Mode,
};

use crate::error::{Error, Result};
use crate::plan::cpus;

const MPOL_F_STATIC_NODES: u32 = 1 << 15;
const MPOL_F_RELATIVE_NODES: u32 = 1 << 14;
const MPOL_F_NUMA_BALANCING: u32 = 1 << 13;

/// `node_limit` is one past the host's highest possible node; it is read
/// only when nodes are given.
pub(crate) fn plan(
    p: Option<&LinuxMemoryPolicy>,
    node_limit: impl Fn() -> Result<u32>,
) -> Result<Option<MemPolicy>> {
    let Some(p) = p else { return Ok(None) };
    let mode = match p.mode() {
        Mode::MpolDefault => 0,
        Mode::MpolPreferred => 1,
        Mode::MpolBind => 2,
        Mode::MpolInterleave => 3,
        Mode::MpolLocal => 4,
        Mode::MpolPreferredMany => 5,
        Mode::MpolWeightedInterleave => 6,
    };
    let flags = flags(p)?;
    let relative = flags & MPOL_F_RELATIVE_NODES != 0;
    let nodes = match p.nodes().as_deref() {
        None | Some("") => Vec::new(),
        // Relative node numbers are positions within the cpuset's nodes,
        // not node ids: they need not exist on the host.
        Some(text) if relative => {
            cpus::parse_list("linux.memoryPolicy.nodes", text, u32::MAX, "node")?
        }
        Some(text) => {
            cpus::parse_list("linux.memoryPolicy.nodes", text, node_limit()?, "NUMA node")?
        }
    };
    let m = p.mode();
    match m {
        Mode::MpolDefault | Mode::MpolLocal if !nodes.is_empty() => {
            return Err(Error::invalid(
                "linux.memoryPolicy.nodes",
                format!("{m} takes no nodes"),
            ));
        }
        Mode::MpolBind
        | Mode::MpolInterleave
        | Mode::MpolWeightedInterleave
        | Mode::MpolPreferredMany
            if nodes.is_empty() =>
        {
            return Err(Error::invalid(
                "linux.memoryPolicy.nodes",
                format!("{m} needs at least one node"),
            ));
        }
        _ => {}
    }
    let static_or_relative = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);
    if static_or_relative != 0 && (nodes.is_empty() || m == Mode::MpolDefault) {
        return Err(Error::invalid(
            "linux.memoryPolicy.flags",
            format!(
                "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES need nodes and a mode other than {m}"
            ),
        ));
    }
    if flags & MPOL_F_NUMA_BALANCING != 0 && !matches!(m, Mode::MpolBind | Mode::MpolPreferredMany)
    {
        return Err(Error::invalid(
            "linux.memoryPolicy.flags",
            format!("MPOL_F_NUMA_BALANCING goes with MPOL_BIND or MPOL_PREFERRED_MANY, not {m}"),
        ));
    }
    Ok(Some(MemPolicy { mode, flags, nodes }))
}

fn flags(p: &LinuxMemoryPolicy) -> Result<u32> {
    let mut bits = 0;
    for flag in p.flags().iter().flatten() {
        bits |= match flag {
            Flag::MpolFStaticNodes => MPOL_F_STATIC_NODES,
            Flag::MpolFRelativeNodes => MPOL_F_RELATIVE_NODES,
            Flag::MpolFNumaBalancing => MPOL_F_NUMA_BALANCING,
        };
    }
    if bits & MPOL_F_STATIC_NODES != 0 && bits & MPOL_F_RELATIVE_NODES != 0 {
        return Err(Error::invalid(
            "linux.memoryPolicy.flags",
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> LinuxMemoryPolicy {
        serde_json::from_str(json).unwrap()
    }

    fn field_of(json: &str) -> String {
        match plan(Some(&policy(json)), || Ok(1)).unwrap_err() {
            Error::InvalidSpec { field, .. } => field,
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn modes_flags_and_nodes_translate() {
        let p = plan(
            Some(&policy(
                r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES"]}"#,
            )),
            || Ok(1),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            p,
            MemPolicy {
                mode: 2,
                flags: 1 << 15,
                nodes: vec![0]
            }
        );
        let p = plan(Some(&policy(r#"{"mode":"MPOL_PREFERRED"}"#)), || {
            panic!("no nodes to check")
        })
        .unwrap()
        .unwrap();
        assert_eq!((p.mode, p.nodes.len()), (1, 0));
        let p = plan(
            Some(&policy(
                r#"{"mode":"MPOL_INTERLEAVE","nodes":"2-3","flags":["MPOL_F_RELATIVE_NODES"]}"#,
            )),
            || Ok(1),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.nodes, vec![2, 3]);
    }

    #[test]
    fn bad_policies_name_their_field() {
        let cases = [
            (
                r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#,
                "linux.memoryPolicy.nodes",
            ),
            (
                r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#,
                "linux.memoryPolicy.nodes",
            ),
            (r#"{"mode":"MPOL_BIND"}"#, "linux.memoryPolicy.nodes"),
            (
                r#"{"mode":"MPOL_INTERLEAVE","nodes":""}"#,
                "linux.memoryPolicy.nodes",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"1"}"#,
                "linux.memoryPolicy.nodes",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"0-"}"#,
                "linux.memoryPolicy.nodes",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#,
                "linux.memoryPolicy.flags",
            ),
            (
                r#"{"mode":"MPOL_PREFERRED","flags":["MPOL_F_STATIC_NODES"]}"#,
                "linux.memoryPolicy.flags",
            ),
            (
                r#"{"mode":"MPOL_INTERLEAVE","nodes":"0","flags":["MPOL_F_NUMA_BALANCING"]}"#,
                "linux.memoryPolicy.flags",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(json), field, "{json}");
        }
    }
}
