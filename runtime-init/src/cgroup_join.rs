//! Step Cgroup: an init joins its container's v1 cgroup by writing `0` to
//! each `tasks` file the runtime sent, then, if asked, unshares a cgroup
//! namespace whose root is the cgroup just joined. Used at sync 0b (an init
//! cloned before its cgroup was made) and by a resident init's clone. A
//! thread moving itself is the one migration the kernel does without the
//! global threadgroup lock (see the runtime's `cgroups::tree::Entry`).

use std::os::fd::OwnedFd;

use crate::error::{Error, Result};

pub fn join(tasks: &[OwnedFd], unshare_namespace: bool) -> Result<()> {
    for fd in tasks {
        rustix::io::write(fd, b"0").map_err(|errno| Error::Cgroup {
            op: "write 0 to a cgroup tasks file",
            errno,
        })?;
    }
    if unshare_namespace {
        crate::sys::unshare_cgroupns().map_err(|errno| Error::Cgroup {
            op: "unshare the cgroup namespace",
            errno,
        })?;
    }
    Ok(())
}
