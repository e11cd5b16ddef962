//! Resident mode: one init per `Runtime`, exec'd once, that clones each
//! container's init instead of the runtime exec'ing a fresh one.
//!
//! Started as `corral-init 3 resident`. It waits on its socket for
//! `spawn` requests and answers each with the new process's pid and pidfd
//! (`exec_pid`) or an `error`. The new process is cloned with
//! `CLONE_PARENT`, so it is the runtime's child, as an exec'd init is, and
//! the runtime waits on it through its pidfd as before. It starts as a
//! copy of this one: libc, std and the binary's pages are set up already,
//! which saves the exec and glibc's start-up of every container (about
//! 0.35 ms each on this project's machines, see docs/performance.md).
//!
//! The copy then does what the runtime's cloned child does before exec'ing
//! an init (cgroup placement, the cgroup namespace, the user namespace's
//! maps wait, the parent-death signal, fds 0-3) and runs the init's steps
//! from the socket now at fd 3. The runtime only asks for containers that
//! join nothing and have no time namespace (see `runtime/src/create.rs`).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use corral_protocol::{InitChannel, Request, SpawnRequest};
use rustix::io::Errno;

use crate::error::Error;
use crate::sys;

/// Serves `spawn` requests until the runtime closes the socket. Returns
/// only in a cloned child, ready to run a container's init.
pub fn serve(channel: &'static InitChannel) {
    crate::capabilities::read_last_cap_ahead();
    loop {
        let (req, fds) = match channel.recv_request() {
            Ok(Request::Spawn(req, fds)) => (req, fds),
            Err(corral_protocol::Error::Closed) => std::process::exit(0),
            Ok(_) | Err(_) => std::process::exit(1),
        };
        let first_cgroup = 1 + req.stdio.iter().filter(|s| **s).count();
        let cgroup_dir = req.cgroup_dir.then(|| fds.get(first_cgroup)).flatten();
        match sys::clone_parent(req.clone_flags, cgroup_dir.map(|fd| fd.as_fd())) {
            Ok(Some((pidfd, pid))) => {
                drop(fds);
                if channel.send_exec_pid(pid, pidfd.as_fd()).is_err() {
                    std::process::exit(1);
                }
            }
            Ok(None) => {
                if let Err(error) = enter(channel, &req, fds) {
                    crate::channel::fail(channel, error);
                }
                return;
            }
            Err(errno) => {
                drop(fds);
                let error = Error::Spawn {
                    op: "clone3 a container's init",
                    errno,
                };
                if channel.send_error(&error.to_init_error()).is_err() {
                    std::process::exit(1);
                }
            }
        }
    }
}

/// In the cloned child: the container's socket to fd 3 first (from then
/// on errors reach the runtime's create), the cgroup, the parent-death
/// signal, stdio to fds 0-2, and nothing else open.
fn enter(channel: &InitChannel, req: &SpawnRequest, fds: Vec<OwnedFd>) -> Result<(), Error> {
    let fail = |op: &'static str| move |errno| Error::Spawn { op, errno };
    // The received fds are above 3 (the resident init keeps 0-3 open), so
    // placing one never replaces another. Until fd 3 is the container's
    // socket, fd 3 is still the resident init's: nothing may be written to
    // it from this copy (the runtime would read it as the next answer), so
    // a failure here exits without a word and the create sees EOF.
    if fds.is_empty() || fds.iter().any(|fd| fd.as_raw_fd() <= 3) {
        std::process::exit(1);
    }
    let mut fds = fds.into_iter();
    let socket = fds.next().expect("checked above");
    if sys::dup_onto(socket.as_fd(), channel.as_fd().as_raw_fd()).is_err() {
        std::process::exit(1);
    }
    rustix::io::fcntl_setfd(channel, rustix::io::FdFlags::CLOEXEC)
        .map_err(fail("mark the init socket close-on-exec"))?;
    let stdio: Vec<(OwnedFd, i32)> = req
        .stdio
        .iter()
        .zip(0..)
        .filter(|(wanted, _)| **wanted)
        .map(|(_, target)| Ok((fds.next().ok_or(Errno::BADF)?, target)))
        .collect::<Result<_, Errno>>()
        .map_err(fail("take stdio"))?;
    let cgroup: Vec<OwnedFd> = fds.by_ref().take(req.cgroup_fds as usize).collect();
    // v1: the child moves itself ("0"), as the runtime's clone does; a v2
    // directory was already entered by clone3.
    let tasks: &[OwnedFd] = if req.cgroup_dir { &[] } else { &cgroup };
    crate::cgroup_join::join(tasks, req.unshare_cgroupns)?;
    if req.wait_for_maps {
        // A new user namespace: its maps come from the runtime, which
        // knows our pid only now; then become its root, which the maps
        // must map (see runtime/src/plan/userns.rs), before the
        // parent-death signal, which a credential change clears.
        let pipe = fds
            .next()
            .ok_or(Errno::BADF)
            .map_err(fail("take the maps pipe"))?;
        let mut byte = [0u8];
        loop {
            match rustix::io::read(&pipe, &mut byte) {
                Ok(1) => break,
                Err(Errno::INTR) => continue,
                Ok(_) => return Err(fail("wait for the id maps")(Errno::PIPE)),
                Err(errno) => return Err(fail("wait for the id maps")(errno)),
            }
        }
        sys::become_root().map_err(fail("become the user namespace's root"))?;
    }
    if req.kill_on_parent_death {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .map_err(fail("set the parent-death signal"))?;
    }
    for (fd, target) in &stdio {
        sys::dup_onto(fd.as_fd(), *target).map_err(fail("place stdio"))?;
    }
    // Every received fd is dropped (closed) before the sweep, so that none
    // is closed twice: the sweep is for what the resident init held.
    drop((stdio, socket, cgroup, fds));
    sys::close_from(4).map_err(fail("close the resident init's fds"))
}
