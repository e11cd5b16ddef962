//! Step MemoryPolicy: `set_mempolicy(2)` for `linux.memoryPolicy`, after
//! the scheduler step and before seccomp and the capability drop. The task
//! policy survives `execve` and is inherited by children (set_mempolicy(2)).
//! It is the container's first process's; `exec`'d processes keep the
//! default policy (the field is container-wide, and corral does not
//! re-apply it).

use corral_protocol::MemPolicy;

use crate::error::{Error, Result};

pub fn set(policy: Option<&MemPolicy>) -> Result<()> {
    let Some(p) = policy else { return Ok(()) };
    crate::sys::set_memory_policy(p.mode, p.flags, &p.nodes).map_err(|errno| Error::MemoryPolicy {
        mode: p.mode,
        flags: p.flags,
        nodes: p.nodes.clone(),
        errno,
    })
}
