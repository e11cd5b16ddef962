//! Cgroup operations on containers known only by their state dir (the
//! command line's `pause`, `resume`, `update`, `events --stats`, `ps`).
//! The cgroup's directories are read from `state.json`; a stopped
//! container is refused.

use oci_spec::runtime::LinuxResources;

use super::{CgroupPaths, Stats};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::Status;

impl Runtime {
    /// Freezes container `id` (`corral pause`).
    pub async fn pause_by_id(&self, id: &str) -> Result<()> {
        let cg = self.cgroup_in(id, Status::Running, "pause")?;
        super::freezer::freeze(&cg).await
    }

    /// Thaws container `id` (`corral resume`).
    pub async fn resume_by_id(&self, id: &str) -> Result<()> {
        let cg = self.cgroup_in(id, Status::Paused, "resume")?;
        super::freezer::thaw(&cg).await
    }

    /// Resource usage of container `id` (`corral events --stats`).
    pub fn stats_by_id(&self, id: &str) -> Result<Stats> {
        let cg = self.live_cgroup(id, "read stats of")?;
        Ok(super::stats::read(&cg))
    }

    /// Changes the resources of container `id` (`corral update`).
    pub fn update_by_id(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let cg = self.live_cgroup(id, "update")?;
        super::update(&cg, resources)
    }

    /// Host pids in container `id`'s cgroup (`corral ps`).
    pub fn pids_by_id(&self, id: &str) -> Result<Vec<i32>> {
        let cg = self.live_cgroup(id, "list processes of")?;
        Ok(super::tree::pids(&cg))
    }

    /// Whether container `id` is paused.
    pub fn paused_by_id(&self, id: &str) -> Result<bool> {
        let stored = self.state_dir()?.read(id)?;
        Ok(stored
            .cgroup
            .as_ref()
            .is_some_and(super::freezer::is_frozen))
    }

    /// The cgroup of container `id`, which must be in state `want` (runc
    /// pauses only a running container and resumes only a paused one).
    fn cgroup_in(&self, id: &str, want: Status, operation: &'static str) -> Result<CgroupPaths> {
        let stored = self.state_dir()?.read(id)?;
        let status = stored.status();
        if status != want {
            return Err(Error::State {
                id: id.to_owned(),
                state: status.name(),
                operation,
            });
        }
        self.live_cgroup(id, operation)
    }

    fn live_cgroup(&self, id: &str, operation: &'static str) -> Result<CgroupPaths> {
        let stored = self.state_dir()?.read(id)?;
        let status = stored.status();
        if status == Status::Stopped {
            return Err(Error::State {
                id: id.to_owned(),
                state: status.name(),
                operation,
            });
        }
        stored.cgroup.ok_or_else(|| {
            Error::unsupported(
                "linux.cgroupsPath",
                format!("container {id:?} has no cgroup"),
            )
        })
    }
}
