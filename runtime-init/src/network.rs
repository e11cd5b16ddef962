//! Step Network: bring the loopback interface up in a new network
//! namespace (it starts down). Other interfaces are the business of
//! whoever made the namespace (CNI, the runtime's user); the ioctl itself
//! is in `sys`, rustix has no `SIOCSIFFLAGS`.

use crate::error::{Error, Result};
use crate::sys;

pub fn loopback_up() -> Result<()> {
    sys::set_loopback_up().map_err(|errno| Error::Network {
        op: "bring up",
        errno,
    })
}
