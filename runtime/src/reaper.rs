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
    if process.reaped() && cgroup.is_none() {
        return;
    }
    if !process.reaped() {
        let _ = process.signal(libc::SIGKILL);
        if let Some(cg) = &cgroup {
            crate::cgroups::thaw_after_kill(cg, libc::SIGKILL);
        }
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let span = tracing::debug_span!("reap", pid = process.pid().as_raw_nonzero().get());
            handle.spawn(
                async move {
                    let _ = process.wait().await;
                    if let Some(cg) = cgroup {
                        if let Err(e) = crate::cgroups::tree::remove(&cg).await {
                            tracing::error!(error = %e, "remove the cgroup of a dropped container");
                        }
                    }
                }
                .instrument(span),
            );
        }
        Err(_) => {
            process.kill_and_reap_blocking();
            if let Some(cg) = cgroup {
                crate::cgroups::tree::remove_blocking(&cg);
            }
        }
    }
}
