//! `linux.netDevices`: moving host network devices into a container's new
//! network namespace, renamed and set up, and moving them back when create
//! fails. Runs in the runtime (the host's network namespace, which holds
//! the devices) after `clone3` made the child's namespace and before the
//! init is sent its spec, so the workload finds them in place.
//!
//! Each move is one `RTM_NEWLINK` carrying the new namespace, the new name
//! and `IFF_UP`: the kernel moves the link under the new name (so a name
//! clash on either side cannot leave it half-moved), then renames and sets
//! it up there (rtnetlink(7), `do_setlink`). Every device is looked up
//! before the first moves, so a missing one changes nothing. The rtnetlink
//! calls are blocking syscalls that return at once; callers run them
//! through `spawn_blocking`.
//!
//! After create, the devices belong to the container: when its network
//! namespace is freed the kernel returns physical devices to the host's
//! initial namespace and destroys virtual ones (veth, macvlan), as
//! network_namespaces(7) says; corral does not move them back then.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};
use crate::plan::NetDevice;
use crate::sys::netlink::{LinkChange, RouteSocket};

/// Devices moved into a container's namespace, with that namespace held
/// open so that they can be moved back.
pub(crate) struct Moved {
    devices: Vec<NetDevice>,
    netns: OwnedFd,
}

fn open_netns(path: &str) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open {path:?}"), e))
}

/// Moves `devices` into the network namespace of `pid` (the runtime's
/// unreaped child, so the pid cannot name another process). On failure the
/// devices already moved are moved back and the error names the device.
pub(crate) fn move_in_blocking(pid: i32, devices: &[NetDevice]) -> Result<Option<Moved>> {
    if devices.is_empty() {
        return Ok(None);
    }
    let netns = open_netns(&format!("/proc/{pid}/ns/net"))?;
    let mut host = RouteSocket::open().map_err(|e| Error::sys("open rtnetlink socket", e))?;
    let mut indexes = Vec::with_capacity(devices.len());
    for d in devices {
        let index = host.index_of(&d.host_name).map_err(|e| {
            Error::invalid(
                format!("linux.netDevices.{}", d.host_name),
                format!("no such network device on the host ({e})"),
            )
        })?;
        indexes.push(index);
    }
    let mut moved = Moved {
        devices: Vec::with_capacity(devices.len()),
        netns,
    };
    for (d, index) in devices.iter().zip(indexes) {
        let change = LinkChange {
            name: Some(&d.container_name),
            netns: Some(moved.netns.as_fd()),
            up: Some(true),
        };
        if let Err(e) = host.change_link(index, &change) {
            moved.move_back_blocking();
            return Err(Error::invalid(
                format!("linux.netDevices.{}", d.host_name),
                format!(
                    "move into the container's network namespace as {:?}: {e}",
                    d.container_name
                ),
            ));
        }
        moved.devices.push(d.clone());
    }
    Ok(Some(moved))
}

impl Moved {
    /// Moves every device back to the runtime's network namespace, down
    /// and under its host name. Best effort: a device that cannot be moved
    /// is left to the kernel's rule for a freed namespace.
    pub(crate) fn move_back_blocking(&mut self) {
        if self.devices.is_empty() {
            return;
        }
        let Ok(host_ns) = open_netns("/proc/thread-self/ns/net") else {
            return;
        };
        let Ok(mut inside) = socket_in(&self.netns) else {
            return;
        };
        for d in self.devices.drain(..).rev() {
            let Ok(index) = inside.index_of(&d.container_name) else {
                continue;
            };
            let change = LinkChange {
                name: Some(&d.host_name),
                netns: Some(host_ns.as_fd()),
                up: Some(false),
            };
            if let Err(e) = inside.change_link(index, &change) {
                tracing::error!(device = %d.host_name, error = %e, "move a network device back");
            }
        }
    }
}

/// A `NETLINK_ROUTE` socket in the namespace `netns`: opened by a thread of
/// its own that joins the namespace and exits (a socket keeps the
/// namespace it was made in), so no runtime thread ever changes namespace.
fn socket_in(netns: &OwnedFd) -> std::io::Result<RouteSocket> {
    let netns = netns.try_clone()?;
    std::thread::scope(|s| {
        s.spawn(move || {
            rustix::thread::move_into_link_name_space(
                netns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            RouteSocket::open()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("netns socket thread panicked")))
    })
}
