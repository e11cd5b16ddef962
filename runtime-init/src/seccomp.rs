//! Step Seccomp: loads the filters the runtime compiled from
//! `linux.seccomp` (`runtime/src/plan/seccomp.rs`), in order. It does not
//! interpret them.
//!
//! With `noNewPrivileges` this runs last, after the start signal and just
//! before `execve`, so that no init syscall meets the filter. Without it,
//! `seccomp(2)` needs `CAP_SYS_ADMIN`, which the capabilities step may drop,
//! so it runs before that step, as runc does; the profile must then allow
//! the init's remaining calls (capset, prctl, stat, close_range, sendmsg,
//! recvmsg, open, write, execve).

use corral_protocol::SeccompProgram;

use crate::error::{Error, Result};

pub fn load(program: Option<&SeccompProgram>) -> Result<()> {
    let Some(p) = program else {
        return Ok(());
    };
    for (index, filter) in p.filters.iter().enumerate() {
        crate::sys::load_seccomp_filter(p.flags, filter)
            .map_err(|errno| Error::Seccomp { index, errno })?;
    }
    Ok(())
}
