//! Joining the cgroups of a running container's process, for exec.
//!
//! Owns reading `/proc/<pid>/cgroup`, mapping each line to the host's
//! mounted hierarchy (`cgroup_layout`), and the join itself: on cgroup v2
//! the new process is born in the target's cgroup (`CLONE_INTO_CGROUP`
//! with an fd of the directory, so there is no window in the wrong one);
//! on each v1 hierarchy the cloned child writes `0` to the `tasks` file
//! before it execs the init, as a container's first process does (see
//! `cgroups::tree::Entry::Tasks` for why `tasks`). Hierarchies that are
//! not mounted are left alone.
//!
//! Deliberately self-contained and small: when corral gets a cgroup
//! manager of its own, exec should ask it instead.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{Mode, OFlags};

use crate::cgroup_layout::{Hierarchy, Layout};
use crate::error::{Error, Result};

/// Where a process must go to share another's cgroups.
#[derive(Debug, Default)]
pub(crate) struct Target {
    /// The v2 cgroup directory, for `CLONE_INTO_CGROUP`.
    v2: Option<OwnedFd>,
    /// The v1 cgroups' `tasks` files, one per hierarchy, open for writing.
    v1: Vec<OwnedFd>,
}

impl Target {
    /// The cgroups of process `pid`, as `layout` mounts them.
    pub fn of(pid: i32, layout: &Layout) -> Result<Self> {
        let path = format!("/proc/{pid}/cgroup");
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::sys(format!("read {path}"), e))?;
        let mut target = Target::default();
        for (hierarchy, dir) in plan(&text, layout.hierarchies()) {
            if hierarchy.v2 {
                let fd = rustix::fs::open(
                    &dir,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::sys(format!("open cgroup {dir:?}"), e))?;
                target.v2 = Some(fd);
            } else {
                let tasks = dir.join("tasks");
                let fd = rustix::fs::open(&tasks, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| Error::sys(format!("open {tasks:?}"), e))?;
                target.v1.push(fd);
            }
        }
        Ok(target)
    }

    /// The fd for `CLONE_INTO_CGROUP`, on a host with cgroup v2 mounted.
    pub fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().map(|fd| fd.as_fd())
    }

    /// The v1 `tasks` files the cloned child writes itself into.
    pub fn v1_tasks(&self) -> Vec<BorrowedFd<'_>> {
        self.v1.iter().map(|fd| fd.as_fd()).collect()
    }
}

/// For each line of a `/proc/<pid>/cgroup` text whose hierarchy is
/// mounted, the hierarchy and the host directory of that cgroup. Pure.
pub(crate) fn plan<'a>(text: &str, hierarchies: &'a [Hierarchy]) -> Vec<(&'a Hierarchy, PathBuf)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mut set: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        set.sort_unstable();
        let found = hierarchies.iter().find(|h| {
            if h.v2 {
                set.is_empty()
            } else {
                let mut options: Vec<&str> =
                    h.options.split(',').filter(|o| !o.is_empty()).collect();
                options.sort_unstable();
                !set.is_empty() && options == set
            }
        });
        // A path with `..` cannot come from the kernel; refuse to follow it.
        if let Some(h) = found.filter(|_| !path.split('/').any(|c| c == "..")) {
            out.push((h, h.mount_point.join(path.trim_start_matches('/'))));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn each_mounted_hierarchy_maps_to_the_targets_dir() {
        let layout = Layout::parse(HYBRID, "0::/\n");
        let target = "5:cpuacct,cpu:/c1\n4:memory:/m/c1\n3:pids:/p\n0::/u/c1\n";
        let planned: Vec<(bool, PathBuf)> = plan(target, layout.hierarchies())
            .into_iter()
            .map(|(h, dir)| (h.v2, dir))
            .collect();
        assert_eq!(
            planned,
            [
                (
                    false,
                    Path::new("/sys/fs/cgroup/cpu,cpuacct/c1").to_path_buf()
                ),
                (false, Path::new("/sys/fs/cgroup/memory/m/c1").to_path_buf()),
                (true, Path::new("/sys/fs/cgroup/unified/u/c1").to_path_buf()),
            ],
            "pids is not mounted and is skipped"
        );
    }

    #[test]
    fn dot_dot_paths_are_not_followed() {
        let layout = Layout::parse(HYBRID, "0::/\n");
        assert!(plan("4:memory:/../../etc\n", layout.hierarchies()).is_empty());
    }
}
