//! Step Cgroup (sync 0b): an init cloned before its container's cgroup was
//! made joins it first thing, by writing `0` to each v1 `tasks` file the
//! runtime sent. A thread moving itself is the one migration the kernel
//! does without the global threadgroup lock (see the runtime's
//! `cgroups::tree::Entry`). Then, if asked, a new cgroup namespace, whose
//! root is the cgroup just joined.

use std::os::fd::OwnedFd;

use crate::error::{Error, Result};

pub fn join(tasks: &[OwnedFd], unshare_namespace: bool) -> Result<()> {
    for fd in tasks {
        match rustix::io::write(fd, b"0") {
            Ok(1) => {}
            Ok(_) => {
                return Err(Error::Cgroup {
                    op: "write 0 to a cgroup tasks file (short write)",
                    errno: rustix::io::Errno::IO,
                });
            }
            Err(errno) => {
                return Err(Error::Cgroup {
                    op: "write 0 to a cgroup tasks file",
                    errno,
                });
            }
        }
    }
    if unshare_namespace {
        crate::sys::unshare_cgroupns().map_err(|errno| Error::Cgroup {
            op: "unshare the cgroup namespace",
            errno,
        })?;
    }
    Ok(())
}
