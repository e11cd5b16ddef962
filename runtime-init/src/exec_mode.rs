//! Exec mode: the ordered list of steps that starts one more process in a
//! running container, as `main.rs` is for a new container. Nothing else.
//!
//! Every container-wide step (rootfs, mounts, dev, pivot_root, hostname,
//! sysctls, masked and read-only paths) was done by the container's own
//! init and is shared through the namespaces joined here; what remains are
//! the process's own settings, applied by the same step modules and in the
//! same order as for the container's first process. The exec sequence and
//! its sync points are in docs/protocol.md, "Exec sequence".

use std::convert::Infallible;
use std::os::fd::OwnedFd;

use corral_protocol::{ExecSpec, InitChannel};

use crate::error::Result;
use crate::{
    capabilities, close_fds, console, cpu_affinity, cwd, exec, io_priority, join, no_new_privs,
    oom_score_adj, resolve, rlimits, scheduler, seccomp, spawn, user,
};

pub fn run(channel: &InitChannel, spec: &ExecSpec, target: OwnedFd) -> Result<Infallible> {
    let process = &spec.process;
    let caps = process.capabilities.as_ref();
    join::enter(spec, &target)?;
    drop(target);
    // exec sync 2: from here on this is the new process, in the target's
    // pid namespace and a child of the runtime; the first init has exited.
    spawn::run(channel, spec.kill_on_parent_death)?;
    if process.terminal {
        // exec sync 3: the pty master goes to the parent (Console).
        console::setup_exec(channel, process)?;
    }
    rlimits::apply(&process.rlimits)?;
    oom_score_adj::set(process.oom_score_adj)?;
    io_priority::set(process.io_priority)?;
    scheduler::set(process.scheduler.as_ref())?;
    cwd::enter(process.cwd.as_path())?;
    capabilities::drop_bounding(caps)?;
    user::switch(process)?;
    // The container's filter, at the same points as for its first process.
    let seccomp_early = seccomp::early(spec.seccomp.as_ref(), process.no_new_privileges);
    if seccomp_early {
        seccomp::load(channel, spec.seccomp.as_ref())?;
    }
    capabilities::apply(caps)?;
    no_new_privs::set(process.no_new_privileges)?;
    let command = resolve::run(process)?;
    close_fds::run(channel, None)?;
    cpu_affinity::set_final(process.exec_cpu_affinity.as_ref())?;
    if !seccomp_early {
        seccomp::load(channel, spec.seccomp.as_ref())?;
    }
    // exec sync 4: success closes the close-on-exec socket (EOF in the
    // parent); failure is reported as Error{step: exec}.
    Err(exec::exec(&command))
}
