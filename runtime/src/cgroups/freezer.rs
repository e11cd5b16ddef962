//! Pause and resume: v1 `freezer.state`, v2 `cgroup.freeze`.
//!
//! v2 reports completion on `cgroup.events` (`frozen 1`), awaited through
//! inotify. v1 has no event file and no notification of any kind: the
//! kernel moves `freezer.state` from `FREEZING` to `FROZEN` only when it
//! is read after every task has stopped. So on v1 the state is re-read
//! with an exponential back-off (1 ms doubling to 64 ms), bounded by
//! [`V1_FREEZE_TIMEOUT`]; if the cgroup does not freeze in time it is
//! thawed again and the pause fails, as runc does. That is the one timed
//! wait in this module, and it exists only because v1 offers nothing else.

use std::time::Duration;

use super::CgroupPaths;
use crate::error::{Error, Result};

/// How long a v1 freeze may stay `FREEZING` (a task in an uninterruptible
/// sleep delays it) before the pause is abandoned.
pub(crate) const V1_FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes every process of the cgroup and returns once all are frozen.
///
/// # Cancel safety
/// Not cancel-safe: a cancelled call may leave the cgroup frozen or
/// freezing; `thaw` undoes it.
pub(crate) async fn freeze(paths: &CgroupPaths) -> Result<()> {
    if paths.v2 {
        let dir = paths.dirs.first().ok_or_else(no_cgroup)?.path.clone();
        write(&dir.join("cgroup.freeze"), "1")?;
        return super::events::wait_for(&dir, "frozen", "1")
            .await
            .map_err(|e| Error::sys(format!("wait for {dir:?} to freeze"), e));
    }
    let dir = paths.dir_of("freezer").ok_or_else(no_freezer)?;
    let state = dir.join("freezer.state");
    write(&state, "FROZEN")?;
    let deadline = tokio::time::Instant::now() + V1_FREEZE_TIMEOUT;
    let mut backoff = Duration::from_millis(1);
    loop {
        let now = std::fs::read_to_string(&state)
            .map_err(|e| Error::sys(format!("read {state:?}"), e))?;
        if now.trim() == "FROZEN" {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = write(&state, "THAWED");
            return Err(Error::sys(
                format!("freeze {dir:?}"),
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "still FREEZING after 10 s; thawed again",
                ),
            ));
        }
        // Re-asserting FROZEN makes the kernel retry tasks that were busy.
        write(&state, "FROZEN")?;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(64));
    }
}

/// Thaws the cgroup.
pub(crate) async fn thaw(paths: &CgroupPaths) -> Result<()> {
    thaw_write(paths)?;
    if paths.v2 {
        let dir = paths.dirs.first().ok_or_else(no_cgroup)?.path.clone();
        super::events::wait_for(&dir, "frozen", "0")
            .await
            .map_err(|e| Error::sys(format!("wait for {dir:?} to thaw"), e))?;
    }
    Ok(())
}

/// Writes the thawed state without waiting (v1 thaws synchronously).
pub(crate) fn thaw_write(paths: &CgroupPaths) -> Result<()> {
    if paths.v2 {
        let dir = &paths.dirs.first().ok_or_else(no_cgroup)?.path;
        return write(&dir.join("cgroup.freeze"), "0");
    }
    let dir = paths.dir_of("freezer").ok_or_else(no_freezer)?;
    write(&dir.join("freezer.state"), "THAWED")
}

/// Whether the cgroup is frozen (or freezing, on v1).
pub(crate) fn is_frozen(paths: &CgroupPaths) -> bool {
    if paths.v2 {
        return paths.dirs.first().is_some_and(|d| {
            super::events::has(&d.path.join("cgroup.events"), "frozen", "1").unwrap_or(false)
        });
    }
    paths.dir_of("freezer").is_some_and(|d| {
        std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
    })
}

fn write(path: &std::path::Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::sys(format!("write {value:?} to {path:?}"), e))
}

fn no_cgroup() -> Error {
    Error::unsupported("linux.cgroupsPath", "the container has no cgroup")
}

fn no_freezer() -> Error {
    Error::unsupported(
        "pause",
        "the freezer cgroup controller is not mounted on this host",
    )
}
