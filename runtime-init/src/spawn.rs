//! Step Spawn (exec mode): the process that becomes the exec'd workload.
//!
//! After `join`, this init is in the target's namespaces except its pid
//! (and time) namespace, which only its children enter. So it clones once
//! more, with `CLONE_PARENT`: the child is inside the target's pid
//! namespace and is a child of the runtime, which reaps it through the
//! pidfd sent with `exec_pid` like any other process it made. The first
//! process then exits 0 (the runtime reaps it too); the child goes on with
//! the process's steps and execs. See docs/protocol.md, "Exec sequence".

use std::os::fd::OwnedFd;

use corral_protocol::InitChannel;
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::Signal;

use crate::error::{Error, Result};

/// Returns in the new process only; the first process reports it and exits.
pub fn run(channel: &InitChannel, kill_on_parent_death: bool) -> Result<()> {
    let fail = |op: &'static str| move |errno| Error::Spawn { op, errno };
    // The new process waits for EOF on this pipe, which comes when the
    // first process has sent `exec_pid` and exited: so `exec_pid` is always
    // the first frame the runtime reads from either.
    let (wait_read, wait_write) =
        rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(fail("pipe2"))?;
    match crate::sys::clone_parent(0, None).map_err(fail("clone3 with CLONE_PARENT"))? {
        Some((pidfd, pid)) => {
            drop(wait_read);
            // exec sync 2: the runtime gets the pidfd; this process is done.
            let sent = channel.send_exec_pid(pid, std::os::fd::AsFd::as_fd(&pidfd));
            // If the report fails the runtime cannot wait for the child:
            // kill it rather than leave it unowned.
            if let Err(source) = sent {
                let _ = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL);
                return Err(Error::Protocol {
                    op: "send exec pid",
                    source,
                });
            }
            std::process::exit(0)
        }
        None => {
            drop(wait_write);
            wait_for_eof(&wait_read).map_err(fail("wait for the first init to report"))?;
            // The parent-death signal is not inherited across clone; the
            // "parent" is the runtime thread that cloned the first init.
            if kill_on_parent_death {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                    .map_err(fail("set parent-death signal"))?;
            }
            Ok(())
        }
    }
}

/// Reads until EOF (every write end closed), retrying `EINTR`.
fn wait_for_eof(pipe: &OwnedFd) -> rustix::io::Result<()> {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(pipe, &mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}
