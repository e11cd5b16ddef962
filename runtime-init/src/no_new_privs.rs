//! Step NoNewPrivs: `PR_SET_NO_NEW_PRIVS`, so the workload can gain no
//! privilege through setuid binaries or file capabilities. Set after the
//! user and capability steps, which it does not affect.

use crate::error::{Error, Result};

pub fn set(enabled: bool) -> Result<()> {
    if !enabled {
        return Ok(());
    }
    rustix::thread::set_no_new_privs(true).map_err(|errno| Error::NoNewPrivs { errno })
}
