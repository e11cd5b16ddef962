//! Step User: groups, gid, uid and umask of the workload.
//!
//! Uses the raw per-thread `setgroups`/`setresgid`/`setresuid` (the init
//! is single-threaded, so per-thread is per-process). Keeps the permitted
//! capabilities across a switch to a non-root uid (`PR_SET_KEEPCAPS`), so
//! the capabilities step can then set exactly the spec's sets, and restores
//! the parent-death signal, which the kernel clears on a credential change.
//! Also hands the workload's stdio to its uid where the init made it or
//! it is a pipe (as runc's `fixStdioPermissions`), so that a non-root
//! workload can reopen `/dev/stdout`. It does not touch capabilities
//! otherwise (see `capabilities`).

use corral_protocol::ProcessSpec;
use rustix::fs::{FileType, Mode};
use rustix::process::{
    Gid, Uid, parent_process_death_signal, set_parent_process_death_signal, umask,
};
use rustix::thread::{
    set_keep_capabilities, set_thread_groups, set_thread_res_gid, set_thread_res_uid,
};

use crate::error::{Error, Result};

pub fn switch(process: &ProcessSpec) -> Result<()> {
    let fail = |op: &'static str, id: u32| move |errno| Error::User { op, id, errno };
    let death_signal = parent_process_death_signal().map_err(fail("get parent-death signal", 0))?;
    give_stdio(process.uid, process.terminal).map_err(fail("chown stdio to uid", process.uid))?;
    if process.uid != 0 {
        set_keep_capabilities(true).map_err(fail("set keepcaps for uid", process.uid))?;
    }
    // Even an empty list: it clears the groups inherited from the runtime.
    let groups: Vec<Gid> = process
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    match set_thread_groups(&groups) {
        // A user namespace whose `setgroups` is `deny` (a rootless runtime
        // must set that before writing gid_map): nothing can be cleared or
        // set, as with runc; asking for additionalGids there is an error.
        Err(rustix::io::Errno::PERM) if groups.is_empty() && setgroups_denied() => {}
        other => other.map_err(fail("setgroups with gid count", groups.len() as u32))?,
    }
    let gid = Gid::from_raw(process.gid);
    set_thread_res_gid(gid, gid, gid).map_err(fail("setresgid", process.gid))?;
    let uid = Uid::from_raw(process.uid);
    set_thread_res_uid(uid, uid, uid).map_err(fail("setresuid", process.uid))?;
    if let Some(mask) = process.umask {
        umask(Mode::from_raw_mode(mask & 0o777));
    }
    // If the parent died meanwhile the signal will never come; the socket
    // (EOF at the next read) tells the init instead.
    if death_signal.is_some() {
        set_parent_process_death_signal(death_signal)
            .map_err(fail("restore parent-death signal for uid", process.uid))?;
    }
    Ok(())
}

/// Whether `/proc/self/setgroups` says `deny` (user_namespaces(7)).
fn setgroups_denied() -> bool {
    std::fs::read("/proc/self/setgroups").is_ok_and(|s| s.starts_with(b"deny"))
}

/// `fchown(fd, uid, -1)` on each of fds 0-2 that is a pipe or socket, or,
/// with a terminal, the pty slave the console step put there; files and
/// terminals inherited from the host are left alone. The group is kept (a
/// devpts `gid=5` tty group, say). EINVAL/EPERM (ids not mapped in a user
/// namespace) and EROFS are ignored, as by runc: the workload then simply
/// cannot reopen its stdio.
fn give_stdio(uid: u32, terminal: bool) -> rustix::io::Result<()> {
    use rustix::io::Errno;
    use rustix::stdio::{stderr, stdin, stdout};
    for fd in [stdin(), stdout(), stderr()] {
        let st = rustix::fs::fstat(fd)?;
        if st.st_uid == uid || !should_give(FileType::from_raw_mode(st.st_mode), terminal) {
            continue;
        }
        match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) | Err(Errno::INVAL | Errno::PERM | Errno::ROFS) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Whether a stdio fd of this type is the workload's to own.
pub fn should_give(file_type: FileType, terminal: bool) -> bool {
    match file_type {
        FileType::Fifo | FileType::Socket => true,
        FileType::CharacterDevice => terminal,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pipes_sockets_and_our_pty_change_owner() {
        assert!(should_give(FileType::Fifo, false));
        assert!(should_give(FileType::Socket, false));
        assert!(should_give(FileType::CharacterDevice, true));
        assert!(
            !should_give(FileType::CharacterDevice, false),
            "a host tty or /dev/null"
        );
        assert!(!should_give(FileType::RegularFile, false), "a host file");
    }
}
