//! Step Seccomp: loads the filter the runtime compiled from
//! `linux.seccomp` (`runtime/src/plan/seccomp/`). It does not interpret
//! it.
//!
//! With `noNewPrivileges` this runs last, after the start signal and just
//! before `execve`, so that no init syscall meets the filter. Without it,
//! `seccomp(2)` needs `CAP_SYS_ADMIN`, which the capabilities step may drop,
//! so it runs before that step, as runc does; the profile must then allow
//! the init's remaining calls (capset, prctl, stat, close_range, sendmsg,
//! recvmsg, open, write, execve).
//!
//! A profile with `SCMP_ACT_NOTIFY` is loaded with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER`, and the listener fd goes to the
//! runtime at once (`SeccompListener`), which hands it to the agent. Such
//! a profile is loaded before `Ready` even with `noNewPrivileges`
//! ([`early`]): the runtime that receives the fd must still be listening,
//! and after the start signal it may be gone (`corral create` exits).
//! Calls the init makes after loading may then wait for the agent, which
//! already has the fd.

use corral_protocol::{InitChannel, SeccompProgram};

use crate::error::{Error, Result};

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` (linux/seccomp.h).
const FLAG_NEW_LISTENER: u32 = 8;

/// Whether the filter must be loaded before `Ready`, at the place used
/// without `noNewPrivileges`.
pub fn early(program: Option<&SeccompProgram>, no_new_privileges: bool) -> bool {
    !no_new_privileges || program.is_some_and(|p| p.flags & FLAG_NEW_LISTENER != 0)
}

pub fn load(channel: &InitChannel, program: Option<&SeccompProgram>) -> Result<()> {
    let Some(p) = program else {
        return Ok(());
    };
    for (index, filter) in p.filters.iter().enumerate() {
        let listener = crate::sys::load_seccomp_filter(p.flags, filter)
            .map_err(|errno| Error::Seccomp { index, errno })?;
        if let Some(fd) = listener {
            // The fd is close-on-exec; it is dropped (closed) right after.
            channel
                .send_seccomp_listener(std::os::fd::AsFd::as_fd(&fd))
                .map_err(|source| Error::Protocol {
                    op: "send the seccomp listener fd",
                    source,
                })?;
        }
    }
    Ok(())
}
