//! The cgroup directories themselves: making them (with what the kernel
//! needs before a process can enter: v1 cpuset's cpus and mems, v2's
//! enabled controllers), applying a plan of writes, the fds the child is
//! placed with, and removal once the last process has left.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags};
use tracing::debug;

use super::write::Write;
use super::{CgroupPaths, freezer};
use crate::error::{Error, Result};

/// Makes each directory of `paths` (and missing parents), marking the
/// ones made here as owned. On failure, removes what it made.
///
/// `spare`, when given, holds one empty directory per entry of `paths`
/// under the same parent (see `spare`): each is renamed into place
/// instead of a `mkdir`. Where that fails, the spare is removed: a
/// directory already at the path is joined, not owned (as after a `mkdir`
/// that finds it), and any other failure falls back to `mkdir`.
pub(crate) fn create(paths: &mut CgroupPaths, spare: Option<Vec<PathBuf>>) -> Result<()> {
    let mut spare = spare.unwrap_or_default().into_iter();
    for i in 0..paths.dirs.len() {
        let cpuset = paths.dirs[i].controllers.iter().any(|c| c == "cpuset");
        let dir = paths.dirs[i].path.clone();
        if let Some(from) = spare.next() {
            match std::fs::rename(&from, &dir) {
                Ok(()) => {
                    paths.dirs[i].owned = true;
                    continue;
                }
                Err(e) => {
                    let _ = std::fs::remove_dir(&from);
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        paths.dirs[i].owned = false;
                        continue;
                    }
                }
            }
        }
        match make_dir(&dir, cpuset) {
            Ok(made) => paths.dirs[i].owned = made,
            Err(e) => {
                remove_blocking(paths);
                // The spare directories not used yet go too.
                for unused in spare {
                    let _ = std::fs::remove_dir(unused);
                }
                return Err(Error::sys(format!("mkdir cgroup {dir:?}"), e));
            }
        }
    }
    Ok(())
}

/// `mkdir -p`, copying v1 cpuset's `cpus` and `mems` from the parent into
/// each level that has none (a new cpuset cgroup starts empty, and the
/// kernel refuses to move a process into it: ENOSPC). Levels made by a
/// concurrent create may not be filled yet, so with `cpuset` every level is
/// checked, not only the ones made here; without, the common case is one
/// `mkdir` (the parent exists). Whether the leaf was made here.
fn make_dir(dir: &Path, cpuset: bool) -> io::Result<bool> {
    if !cpuset {
        // The common case in one call: the parent exists.
        match std::fs::create_dir(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let made = if dir.is_dir() {
        false
    } else {
        if let Some(parent) = dir.parent() {
            make_dir(parent, cpuset)?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        }
    };
    if cpuset {
        fill_cpuset(dir)?;
    }
    Ok(made)
}

fn fill_cpuset(dir: &Path) -> io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = std::fs::read_to_string(dir.join(file))?;
        if mine.trim().is_empty() {
            let parent = dir.parent().expect("an empty cpuset is not the root");
            let theirs = std::fs::read_to_string(parent.join(file))?;
            write_file(&dir.join(file), theirs.trim())?;
        }
    }
    Ok(())
}

/// Applies `writes`, in order.
pub(crate) fn apply(paths: &CgroupPaths, writes: &[Write]) -> Result<()> {
    if paths.v2 {
        enable_controllers(paths, writes)?;
    }
    let mut i = 0;
    while i < writes.len() {
        let w = &writes[i];
        match write_one(paths, w) {
            // memsw must stay ≥ the limit: when an update raises both, the
            // limit write fails (EINVAL) until memsw is raised first.
            Err(Error::Sys { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL)
                    && w.file == "memory.limit_in_bytes"
                    && writes
                        .get(i + 1)
                        .is_some_and(|n| n.file == "memory.memsw.limit_in_bytes") =>
            {
                write_one(paths, &writes[i + 1])?;
                write_one(paths, w)?;
                i += 2;
            }
            Err(e) => return Err(e),
            Ok(()) => i += 1,
        }
    }
    Ok(())
}

fn write_one(paths: &CgroupPaths, w: &Write) -> Result<()> {
    if w.file == super::device_program::PSEUDO_FILE {
        return attach_device_program(paths, w);
    }
    let dir = paths.dir_of(w.controller).ok_or_else(|| {
        Error::unsupported(
            &w.field,
            format!(
                "the container has no {} cgroup: the controller is not mounted on this host, \
                 or (v1) the container was created without a limit for it",
                w.controller
            ),
        )
    })?;
    let path = dir.join(&w.file);
    debug!(path = ?path, value = %w.value, "cgroup write");
    match write_file(&path, &w.value) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some((file, value)) = &w.fallback else {
                return Err(missing(w, &path));
            };
            let alt = dir.join(file);
            match write_file(&alt, value) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing(w, &path)),
                r => r.map_err(|e| write_err(w, &alt, value, e)),
            }
        }
        r => r.map_err(|e| write_err(w, &path, &w.value, e)),
    }
}

/// Writes an existing file: never creates one (std's `fs::write` would,
/// on anything but cgroupfs), so a missing knob is `NotFound`.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(value.as_bytes())
}

fn missing(w: &Write, path: &Path) -> Error {
    Error::unsupported(
        &w.field,
        format!("{path:?} does not exist: this kernel or hierarchy lacks it"),
    )
}

fn write_err(w: &Write, path: &Path, value: &str, e: io::Error) -> Error {
    Error::sys(format!("write {value:?} to {path:?} for {}", w.field), e)
}

/// v2: a controller's files appear in a cgroup only when its parent has it
/// in `cgroup.subtree_control`; enable what the writes need on every level
/// from the hierarchy root down, as runc does. (A level that holds
/// processes cannot enable controllers: the kernel's "no internal
/// processes" rule, reported as the failed write.)
fn enable_controllers(paths: &CgroupPaths, writes: &[Write]) -> Result<()> {
    let Some(leaf) = paths.dirs.first().map(|d| d.path.clone()) else {
        return Ok(());
    };
    let mut needed: Vec<(&str, &str)> = Vec::new();
    for w in writes.iter().filter(|w| !w.controller.is_empty()) {
        if !needed.iter().any(|(c, _)| *c == w.controller) {
            needed.push((w.controller, &w.field));
        }
    }
    let has = |dir: &Path, c: &str| {
        std::fs::read_to_string(dir.join("cgroup.controllers"))
            .is_ok_and(|s| s.split_whitespace().any(|x| x == c))
    };
    needed.retain(|(c, _)| !has(&leaf, c));
    if needed.is_empty() {
        return Ok(());
    }
    // Levels from the top: every ancestor that is a cgroup.
    let mut levels: Vec<PathBuf> = leaf
        .ancestors()
        .skip(1)
        .take_while(|d| d.join("cgroup.controllers").exists())
        .map(Path::to_path_buf)
        .collect();
    levels.reverse();
    for (controller, field) in needed {
        for level in &levels {
            if !has(level, controller) {
                return Err(Error::unsupported(
                    field,
                    format!("the {controller} controller is not available in {level:?}"),
                ));
            }
            let control = level.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control)
                .is_ok_and(|s| s.split_whitespace().any(|x| x == controller));
            if !enabled {
                write_file(&control, &format!("+{controller}")).map_err(|e| {
                    Error::sys(
                        format!("enable +{controller} in {control:?} for {field}"),
                        e,
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// What the child needs to enter the cgroup before it execs the init.
pub(crate) enum Entry {
    /// v2: the directory, for `clone3(CLONE_INTO_CGROUP)`.
    Dir(OwnedFd),
    /// v1: each hierarchy's `tasks`, opened for writing; the child writes
    /// `0` (itself) to each.
    ///
    /// `tasks`, not `cgroup.procs`: the child is a one-thread process, so
    /// moving its only thread moves the process, and a thread moving itself
    /// is the one migration the kernel (6.0 and later) does without taking
    /// the global threadgroup rwsem for writing. A `cgroup.procs` write
    /// takes it, and that waits out an RCU grace period whenever the lock
    /// has been idle: about 5-8 ms on this project's machines, paid by
    /// every lone `corral run` (measured with a fresh process writing `0`
    /// to each file: 8.2 ms vs 0.3 ms median).
    Tasks(Vec<OwnedFd>),
}

/// Opens what [`Entry`] needs.
pub(crate) fn open_entry(paths: &CgroupPaths) -> Result<Entry> {
    let open = |p: &Path, flags: OFlags| {
        rustix::fs::open(p, flags | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys(format!("open {p:?}"), e))
    };
    if paths.v2 {
        let dir = &paths.dirs[0].path;
        return Ok(Entry::Dir(open(dir, OFlags::RDONLY | OFlags::DIRECTORY)?));
    }
    let fds = paths
        .dirs
        .iter()
        .map(|d| open(&d.path.join("tasks"), OFlags::WRONLY))
        .collect::<Result<_>>()?;
    Ok(Entry::Tasks(fds))
}

/// Pids in the cgroup (every hierarchy, deduplicated).
pub(crate) fn pids(paths: &CgroupPaths) -> Vec<i32> {
    pids_in(&paths.dirs)
}

fn pids_in(dirs: &[super::CgroupDir]) -> Vec<i32> {
    let mut out: Vec<i32> = Vec::new();
    for d in dirs {
        let text = std::fs::read_to_string(d.path.join("cgroup.procs")).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Kills what is left in the owned directories and removes them, once
/// every process has left: v2 `cgroup.kill` then `populated 0` on
/// `cgroup.events`; v1 a pidfd per leftover, `SIGKILL`, and its exit.
/// Never polls.
///
/// # Cancel safety
/// Not cancel-safe: a cancelled removal may leave the directories; calling
/// it again finishes the job.
pub(crate) async fn remove(paths: &CgroupPaths) -> Result<()> {
    if !paths.dirs.iter().any(|d| d.owned) {
        return Ok(());
    }
    if paths.v2 {
        let dir = &paths.dirs[0].path;
        if !super::events::has(&dir.join("cgroup.events"), "populated", "0").unwrap_or(true) {
            if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
                kill_each(paths, &paths.dirs).await?;
            }
            super::events::wait_for(dir, "populated", "0")
                .await
                .map_err(|e| Error::sys(format!("wait for {dir:?} to empty"), e))?;
        }
        return rmdir_all(paths);
    }
    // v1: usually empty by now (a container's processes die with the init
    // of its pid namespace), and `rmdir` of a directory that still has a
    // process fails with EBUSY and changes nothing. So remove first, and
    // list (every directory: someone may have moved a process in one
    // hierarchy only), thaw and kill only when one is busy. An empty
    // container's delete skips the freezer write and the `cgroup.procs`
    // read. Up to three kill passes: a process forked after a pass listed
    // the directories survives it.
    let mut passes = 0;
    loop {
        match rmdir_all(paths) {
            Err(Error::Sys { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) && passes < 3 =>
            {
                passes += 1;
                kill_each(paths, &paths.dirs).await?;
            }
            other => return other,
        }
    }
}

/// `SIGKILL` through a pidfd to every process listed in `listed` (some or
/// all of `paths`' directories), then awaits each exit (pidfd readable). A frozen v1 cgroup is thawed first: frozen
/// v1 tasks do not act on `SIGKILL` until thawed.
async fn kill_each(paths: &CgroupPaths, listed: &[super::CgroupDir]) -> Result<()> {
    let _ = freezer::thaw_write(paths);
    let mut waits = Vec::new();
    for pid in pids_in(listed) {
        let Some(pid) = Pid::from_raw(pid) else {
            continue;
        };
        let Ok(fd) = rustix::process::pidfd_open(pid, PidfdFlags::empty()) else {
            continue;
        };
        let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        let fd = crate::sys::register(fd, tokio::io::Interest::READABLE)
            .map_err(|e| Error::sys("register pidfd", e))?;
        waits.push(fd);
    }
    for w in waits {
        let _ = w
            .readable()
            .await
            .map_err(|e| Error::sys("wait for exit", e))?;
    }
    Ok(())
}

fn rmdir_all(paths: &CgroupPaths) -> Result<()> {
    for d in paths.dirs.iter().filter(|d| d.owned) {
        match std::fs::remove_dir(&d.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::sys(format!("rmdir cgroup {:?}", d.path), e)),
        }
    }
    Ok(())
}

/// [`remove`] for paths with no reactor (drop outside a runtime, a failed
/// `create` before any process exists): kills leftovers and waits for
/// them with `poll(2)` on their pidfds, then removes the directories.
/// Best effort.
pub(crate) fn remove_blocking(paths: &CgroupPaths) {
    if !paths.dirs.iter().any(|d| d.owned) {
        return;
    }
    let _ = freezer::thaw_write(paths);
    let fds: Vec<OwnedFd> = pids(paths)
        .into_iter()
        .filter_map(Pid::from_raw)
        .filter_map(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok())
        .collect();
    for fd in &fds {
        let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        let mut pfd = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: 5,
            tv_nsec: 0,
        };
        let _ = rustix::event::poll(&mut pfd, Some(&timeout));
    }
    let _ = rmdir_all(paths);
}

/// v2 device rules: compile them and attach the program to the cgroup.
fn attach_device_program(paths: &CgroupPaths, w: &Write) -> Result<()> {
    let insns = super::device_program::compile(&w.value)?;
    let dir = paths
        .dir_of("")
        .ok_or_else(|| Error::unsupported(&w.field, "no cgroup v2 directory"))?;
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open cgroup {dir:?}"), e))?;
    debug!(path = ?dir, instructions = insns.len(), "attach device program");
    crate::sys::bpf::attach_device_program(std::os::fd::AsFd::as_fd(&fd), &insns)
        .map_err(|e| Error::sys(format!("attach the device program to cgroup {dir:?}"), e))
}
