//! Step Personality: `personality(2)` for `linux.personality` (the
//! domain, `LINUX` or `LINUX32`). Set just before the start signal: the
//! persona survives `execve` and changes what `uname -m` reports.

use crate::error::{Error, Result};

pub fn set(persona: Option<u32>) -> Result<()> {
    let Some(persona) = persona else {
        return Ok(());
    };
    crate::sys::set_personality(persona).map_err(|errno| Error::Personality { persona, errno })
}
