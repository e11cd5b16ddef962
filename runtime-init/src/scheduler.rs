//! Step Scheduler: `sched_setattr(0, attr, 0)` for `process.scheduler`.
//! Set before the user and capability steps: a negative nice and the
//! real-time policies need `CAP_SYS_NICE`. Policy, priority and nice
//! survive `execve` (`SCHED_RESET_ON_FORK` only acts on `fork`).

use corral_protocol::SchedAttr;

use crate::error::{Error, Result};

pub fn set(attr: Option<&SchedAttr>) -> Result<()> {
    let Some(attr) = attr else {
        return Ok(());
    };
    crate::sys::set_scheduler(attr).map_err(|errno| Error::Scheduler {
        policy: attr.policy,
        errno,
    })
}
