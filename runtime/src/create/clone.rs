//! Sync 0 of a create: `clone3` of the container's init into its
//! namespaces (and cgroup), directly or through the runtime's resident
//! init, then the exec of `corral-init`.

use std::ffi::c_char;
use std::os::fd::AsFd;

use crate::cgroups::tree::Entry;
use crate::container::INIT_SOCKET_FD;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::stdio;
use crate::sys::{self, ChildPlan};

/// Joined namespaces, a new time namespace and the user namespace
/// handshake, for `clone_init`.
pub(super) struct NsPlan<'a> {
    /// The pipe the child waits on for its id maps.
    pub(super) wait_for_maps: Option<std::os::fd::BorrowedFd<'a>>,
    pub(super) join: &'a [(std::os::fd::BorrowedFd<'a>, i32)],
    pub(super) pid: Option<std::os::fd::BorrowedFd<'a>>,
    pub(super) joined_user: bool,
    pub(super) new_time: Option<&'a [u8]>,
}

/// `clone3` into the namespaces, then exec of `corral-init` (sync 0).
pub(super) async fn clone_init(
    runtime: &Runtime,
    prepared: &[stdio::Prepared; 3],
    child_end: std::os::fd::BorrowedFd<'_>,
    clone_flags: u64,
    ns: &NsPlan<'_>,
    detach: bool,
    cgroup: Option<&Entry>,
) -> Result<sys::Spawned> {
    let binary = runtime.init_binary()?;
    let exec = binary.exec();
    let procs: Vec<std::os::fd::BorrowedFd<'_>> = match cgroup {
        Some(Entry::Tasks(fds)) => fds.iter().map(|f| f.as_fd()).collect(),
        _ => Vec::new(),
    };
    // With a cgroup of its own, the child joins its cgroup namespace after
    // it is placed (sys.rs), not at clone time.
    let newcgroup = libc::CLONE_NEWCGROUP as u64;
    let unshare_cgroupns = cgroup.is_some() && clone_flags & newcgroup != 0;
    let clone_flags = if cgroup.is_some() {
        clone_flags & !newcgroup
    } else {
        clone_flags
    };
    let stdio = stdio::child_fds(prepared);
    if let (Some(resident), sys::InitExec::Fd(init)) = (runtime.resident(), &exec) {
        let simple = ns.join.is_empty()
            && ns.pid.is_none()
            && !ns.joined_user
            && ns.new_time.is_none()
            && !detach;
        if simple {
            let how = ResidentSpawn {
                clone_flags,
                unshare_cgroupns,
                wait_for_maps: ns.wait_for_maps,
            };
            if let Some(spawned) =
                spawn_resident(resident, *init, child_end, stdio, cgroup, &procs, &how).await
            {
                return spawned.map_err(|e| Error::sys("clone3 through the resident init", e));
            }
        }
    }
    // argv[1] names INIT_SOCKET_FD.
    let argv: [*const c_char; 3] = [c"corral-init".as_ptr(), c"3".as_ptr(), std::ptr::null()];
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let child = ChildPlan {
        stdio,
        socket: child_end,
        socket_target: INIT_SOCKET_FD,
        init: exec,
        argv: &argv,
        envp: &envp,
        kill_on_parent_death: !detach,
        wait_for_maps: ns.wait_for_maps,
        join: ns.join,
        become_root: ns.joined_user,
        new_time: ns.new_time,
        join_pid: ns.pid,
        cgroup: match cgroup {
            Some(Entry::Dir(fd)) => Some(fd.as_fd()),
            _ => None,
        },
        cgroup_tasks: &procs,
        initial_affinity: None,
        unshare_cgroupns,
    };
    sys::spawn_init(clone_flags, &child).map_err(|e| Error::sys("clone3", e))
}

/// What [`spawn_resident`] asks besides the fds.
struct ResidentSpawn<'a> {
    clone_flags: u64,
    unshare_cgroupns: bool,
    /// A new user namespace: the pipe the child waits on for its maps.
    wait_for_maps: Option<std::os::fd::BorrowedFd<'a>>,
}

/// [`clone_init`] through the runtime's resident init (`resident`): the
/// same child, cloned by a process that needs no exec. Inherited stdio is
/// sent as this process's own fds 0-2, as the resident init's are not
/// ours. `None` when it cannot be asked (then the caller clones directly).
async fn spawn_resident(
    resident: &crate::resident::Resident,
    init: std::os::fd::BorrowedFd<'_>,
    child_end: std::os::fd::BorrowedFd<'_>,
    stdio: [Option<std::os::fd::BorrowedFd<'_>>; 3],
    cgroup: Option<&Entry>,
    tasks: &[std::os::fd::BorrowedFd<'_>],
    how: &ResidentSpawn<'_>,
) -> Option<std::io::Result<sys::Spawned>> {
    let (our_in, our_out, our_err) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let ours = [our_in.as_fd(), our_out.as_fd(), our_err.as_fd()];
    let mut fds = vec![child_end];
    for (given, own) in stdio.into_iter().zip(ours) {
        let fd = match given {
            Some(fd) => fd,
            // Ours, inherited: only when it is open and not close-on-exec.
            // A closed one is inherited as closed, which only the direct
            // clone does; a close-on-exec one at 0-2 is one of this
            // process's own fds that took a closed stdio number, which no
            // container may get.
            None => match rustix::io::fcntl_getfd(own) {
                Ok(flags) if !flags.contains(rustix::io::FdFlags::CLOEXEC) => own,
                _ => return None,
            },
        };
        fds.push(fd);
    }
    let cgroup_dir = match cgroup {
        Some(Entry::Dir(fd)) => {
            fds.push(fd.as_fd());
            true
        }
        _ => {
            fds.extend_from_slice(tasks);
            false
        }
    };
    let cgroup_fds = u32::try_from(fds.len() - 4).ok()?;
    fds.extend(how.wait_for_maps);
    if fds.len() > corral_protocol::MAX_FDS {
        return None;
    }
    let req = corral_protocol::SpawnRequest {
        clone_flags: how.clone_flags,
        stdio: [true; 3],
        cgroup_fds,
        cgroup_dir,
        unshare_cgroupns: how.unshare_cgroupns,
        kill_on_parent_death: true,
        wait_for_maps: how.wait_for_maps.is_some(),
    };
    resident.spawn(init, &req, &fds).await
}
