//! The device nodes and `/dev` symlinks every container gets (runc's
//! default set), merged with the config's `linux.devices`.

use corral_protocol::{DeviceNode, RawPath, Symlink};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};

/// `(path, major, minor)` of the character devices every container has.
const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// `(link, target)` of the standard `/dev` symlinks.
const DEFAULT_SYMLINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

/// Devices and symlinks to create. When the config bind-mounts `/dev`
/// from the host, only its own `linux.devices` are made.
pub(crate) fn plan(
    config: &[LinuxDevice],
    dev_is_bound: bool,
) -> Result<(Vec<DeviceNode>, Vec<Symlink>)> {
    let mut nodes: Vec<DeviceNode> = Vec::new();
    if !dev_is_bound {
        nodes.extend(
            DEFAULT_DEVICES
                .iter()
                .map(|&(path, major, minor)| DeviceNode {
                    path: path.into(),
                    kind: 'c',
                    major,
                    minor,
                    mode: 0o666,
                    uid: 0,
                    gid: 0,
                }),
        );
    }
    for (i, d) in config.iter().enumerate() {
        let node = device(i, d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    let symlinks = if dev_is_bound {
        Vec::new()
    } else {
        DEFAULT_SYMLINKS
            .iter()
            .map(|&(link, target)| Symlink {
                target: target.into(),
                link: link.into(),
            })
            .collect()
    };
    Ok((nodes, symlinks))
}

fn device(index: usize, d: &LinuxDevice) -> Result<DeviceNode> {
    let field = format!("linux.devices[{index}]");
    let path = d.path();
    if !path.is_absolute() || !path.starts_with("/dev") {
        return Err(Error::invalid(
            format!("{field}.path"),
            format!("{path:?} is not under /dev"),
        ));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P => 'p',
        LinuxDeviceType::A => {
            return Err(Error::invalid(
                format!("{field}.type"),
                "\"a\" is for cgroup rules, not nodes",
            ));
        }
    };
    let number = |what: &str, v: i64| {
        u32::try_from(v)
            .map_err(|_| Error::invalid(format!("{field}.{what}"), format!("{v} out of range")))
    };
    Ok(DeviceNode {
        path: RawPath::from(path.as_path()),
        kind,
        major: number("major", d.major())?,
        minor: number("minor", d.minor())?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}
