//! Step IoPriority: `ioprio_set(IOPRIO_WHO_PROCESS, 0, …)` for
//! `process.ioPriority`. Set before the user and capability steps: the RT
//! class needs `CAP_SYS_ADMIN`. The I/O priority survives `execve`.

use crate::error::{Error, Result};

pub fn set(ioprio: Option<u32>) -> Result<()> {
    let Some(ioprio) = ioprio else {
        return Ok(());
    };
    crate::sys::set_io_priority(ioprio).map_err(|errno| Error::IoPriority { ioprio, errno })
}
