//! Reaping processes whose handles were dropped, without blocking the
//! thread that dropped them.

use tracing::Instrument;

use crate::cgroups::CgroupPaths;
use crate::pidfd::PidFd;

/// `SIGKILL`s the process and reaps it: in a task on the current tokio
/// runtime when there is one (the wait is an await on the pidfd), else
/// with a blocking `waitid`, which returns as soon as the kill lands.
///
/// Then removes `cgroup`, if given, once the process is gone (killing
/// anything left in it).
pub(crate) fn kill_and_reap(process: PidFd, cgroup: Option<CgroupPaths>) {
    // Nothing left to do: close the pidfd now, not in a task.
    if process.exited() && cgroup.is_none() {
        return;
    }
    if !process.exited() {
        let _ = process.signal(libc::SIGKILL);
        if let Some(cg) = &cgroup {
            crate::cgroups::thaw_after_kill(cg, libc::SIGKILL);
        }
    }
    let mut pending = Pending {
        process: Some(process),
        cgroup,
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let pid = pending
                .process
                .as_ref()
                .map_or(0, |p| p.pid().as_raw_nonzero().get());
            let span = tracing::debug_span!("reap", pid);
            handle.spawn(
                async move {
                    if let Some(process) = &pending.process {
                        let _ = process.wait().await;
                    }
                    drop(pending.process.take());
                    if let Some(cg) = &pending.cgroup {
                        if let Err(e) = crate::cgroups::tree::remove(cg).await {
                            tracing::error!(error = %e, "remove the cgroup of a dropped container");
                        }
                    }
                    // Done: nothing left for the drop.
                    drop(pending.cgroup.take());
                }
                .instrument(span),
            );
        }
        // No runtime: `pending`'s drop does it all, blocking.
        Err(_) => drop(pending),
    }
}

/// What is left to do for a dropped container. Done by the reaping task;
/// if that task is dropped unfinished (its tokio runtime shut down, as at
/// the end of a `#[tokio::test]` or of a service), the rest is done here,
/// blocking: the process was sent `SIGKILL`, so the wait is short, and a
/// cgroup directory is never left behind.
struct Pending {
    process: Option<PidFd>,
    cgroup: Option<CgroupPaths>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill_and_reap_blocking();
        }
        if let Some(cg) = self.cgroup.take() {
            crate::cgroups::tree::remove_blocking(&cg);
        }
    }
}
