//! `linux.netDevices`: which host network devices move into the
//! container's new network namespace, and their names there. Pure: the
//! move itself is `crate::netdev` (rtnetlink), done by the runtime in the
//! host's network namespace before the init runs.

use std::collections::HashMap;

use oci_spec::runtime::LinuxNetDevice;

use crate::error::{Error, Result};

/// One device to move: its name on the host and in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NetDevice {
    pub host_name: String,
    pub container_name: String,
}

/// Checks names as the kernel does (`dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:` or whitespace.
fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{name:?} is not a valid interface name (1-15 bytes, no '/', ':' or space)"),
        ))
    }
}

pub(crate) fn plan(
    devices: Option<&HashMap<String, LinuxNetDevice>>,
    new_network: bool,
) -> Result<Vec<NetDevice>> {
    let Some(devices) = devices.filter(|d| !d.is_empty()) else {
        return Ok(Vec::new());
    };
    if !new_network {
        return Err(Error::invalid(
            "linux.netDevices",
            "moving network devices needs a new network namespace",
        ));
    }
    let mut out: Vec<NetDevice> = Vec::new();
    for (host_name, dev) in devices {
        let field = format!("linux.netDevices.{host_name}");
        check_name(&field, host_name)?;
        let container_name = match dev.name().as_deref() {
            None | Some("") => host_name.clone(),
            Some(n) => {
                check_name(&format!("{field}.name"), n)?;
                n.to_owned()
            }
        };
        out.push(NetDevice {
            host_name: host_name.clone(),
            container_name,
        });
    }
    out.sort_by(|a, b| a.host_name.cmp(&b.host_name));
    let mut seen = std::collections::HashSet::new();
    for d in &out {
        if !seen.insert(d.container_name.as_str()) || d.container_name == "lo" {
            return Err(Error::invalid(
                format!("linux.netDevices.{}.name", d.host_name),
                format!("{:?} is already taken in the container", d.container_name),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(json: &str) -> HashMap<String, LinuxNetDevice> {
        serde_json::from_str(json).unwrap()
    }

    fn field_of(r: Result<Vec<NetDevice>>) -> String {
        match r.unwrap_err() {
            Error::InvalidSpec { field, .. } => field,
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn devices_keep_or_change_their_names() {
        let d = devices(r#"{"b0":{},"a0":{"name":"eth1"}}"#);
        let got = plan(Some(&d), true).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|d| (d.host_name.as_str(), d.container_name.as_str()))
            .collect();
        assert_eq!(names, [("a0", "eth1"), ("b0", "b0")]);
    }

    #[test]
    fn bad_devices_name_their_field() {
        let d = devices(r#"{"a0":{}}"#);
        assert_eq!(field_of(plan(Some(&d), false)), "linux.netDevices");
        let d = devices(r#"{"a/0":{}}"#);
        assert_eq!(field_of(plan(Some(&d), true)), "linux.netDevices.a/0");
        let d = devices(r#"{"a0":{"name":"sixteen-bytes-xx"}}"#);
        assert_eq!(field_of(plan(Some(&d), true)), "linux.netDevices.a0.name");
        let d = devices(r#"{"a0":{"name":"x"},"b0":{"name":"x"}}"#);
        assert_eq!(field_of(plan(Some(&d), true)), "linux.netDevices.b0.name");
        let d = devices(r#"{"a0":{"name":"lo"}}"#);
        assert_eq!(field_of(plan(Some(&d), true)), "linux.netDevices.a0.name");
    }
}
