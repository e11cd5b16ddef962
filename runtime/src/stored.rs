//! Operations on containers known only by their state dir: the ones a
//! later command-line invocation finds under `--root` (`start`, `kill`,
//! `delete`, `state`, `list`). Every pid is turned into a pidfd and checked
//! against the recorded start time before use.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::{FIFO, Status, StoredState};

/// Opens the start FIFO for reading, which lets the init's blocking open
/// for writing return; then reads the byte it writes. Fails if the process
/// (`pidfd`) exits first. The FIFO is removed afterwards.
pub(crate) async fn release_fifo(dir: &Path, pidfd: impl AsFd) -> Result<()> {
    let path = dir.join(FIFO);
    let fifo = pipe::OpenOptions::new()
        .open_receiver(&path)
        .map_err(|e| Error::sys(format!("open {path:?}"), e))?;
    let exited = exit_notifier(pidfd.as_fd())?;
    let mut byte = [0u8; 1];
    tokio::select! {
        biased;
        read = read_one(&fifo, &mut byte) => {
            read.map_err(|e| Error::sys(format!("read {path:?}"), e))?;
        }
        _ = exited.readable() => {
            return Err(Error::sys(
                "start",
                std::io::Error::other("the container's init exited before it was started"),
            ));
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn read_one(fifo: &pipe::Receiver, byte: &mut [u8; 1]) -> std::io::Result<()> {
    loop {
        fifo.readable().await?;
        match fifo.try_read(byte) {
            Ok(1) => return Ok(()),
            // A FIFO polls readable only once a writer has opened it, so
            // EOF here means the init opened it and closed it unwritten.
            Ok(_) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A pidfd duplicate registered for readability, which it gains when the
/// process exits (a duplicate, because the original may already be
/// registered with the reactor).
fn exit_notifier(pidfd: BorrowedFd<'_>) -> Result<AsyncFd<OwnedFd>> {
    let dup = rustix::io::fcntl_dupfd_cloexec(pidfd, 0).map_err(|e| Error::sys("dup pidfd", e))?;
    crate::sys::register(dup, tokio::io::Interest::READABLE)
        .map_err(|e| Error::sys("register pidfd", e))
}

impl Runtime {
    /// The recorded state of container `id` and its status now.
    pub fn state(&self, id: &str) -> Result<(StoredState, Status)> {
        let stored = self.state_dir()?.read(id)?;
        let status = stored.status();
        Ok((stored, status))
    }

    /// Every container in the state dir, with its status.
    pub fn list(&self) -> Result<Vec<(StoredState, Status)>> {
        let dir = self.state_dir()?;
        let mut out = Vec::new();
        for id in dir.list()? {
            match dir.read(&id) {
                Ok(stored) => {
                    let status = stored.status();
                    out.push((stored, status));
                }
                // Deleted between the listing and the read.
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Starts a container created by another process (`corral start`).
    pub async fn start_by_id(&self, id: &str) -> Result<()> {
        let dir = self.state_dir()?;
        let _lock = dir.lock(id)?;
        let mut stored = dir.read(id)?;
        let status = stored.status();
        if status != Status::Created {
            return Err(Error::State {
                id: id.to_owned(),
                state: status.name(),
                operation: "start",
            });
        }
        let pidfd = self.live_pidfd(&stored, "start")?;
        release_fifo(&dir.dir(id), &pidfd).await?;
        stored.started = true;
        dir.write(&stored)?;
        if let Some(ctx) = crate::hooks::HookContext::of_stored(&stored) {
            let kind = crate::hooks::Kind::Poststart;
            ctx.run_logged(kind, id, "running", stored.pid).await;
        }
        Ok(())
    }

    /// Signals the process of container `id` (`corral kill`).
    pub fn kill_by_id(&self, id: &str, signal: i32) -> Result<()> {
        let dir = self.state_dir()?;
        let stored = dir.read(id)?;
        let pidfd = self.live_pidfd(&stored, "kill")?;
        crate::sys::pidfd_send_signal(pidfd.as_fd(), signal).map_err(|e| {
            Error::sys(format!("pidfd_send_signal {signal} to container {id:?}"), e)
        })?;
        if let Some(cg) = &stored.cgroup {
            crate::cgroups::thaw_after_kill(cg, signal);
        }
        Ok(())
    }

    /// Signals every process of container `id` (`corral kill --all`): the
    /// init through its checked pidfd, then each other pid in the
    /// container's cgroup through a pidfd opened before the signal, so a
    /// pid freed in between is never signalled. As with runc, a stopped
    /// container is not an error (what is left in its cgroup is signalled).
    /// A container without a cgroup has only its init signalled: with a
    /// pid namespace of its own, the kernel ends the rest with it.
    pub fn kill_all_by_id(&self, id: &str, signal: i32) -> Result<()> {
        let dir = self.state_dir()?;
        let stored = dir.read(id)?;
        let send = |fd: BorrowedFd<'_>| match crate::sys::pidfd_send_signal(fd, signal) {
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(Error::sys(
                format!("pidfd_send_signal {signal} to container {id:?}"),
                e,
            )),
            _ => Ok(()),
        };
        if let Some(init) = stored.open_pidfd()? {
            send(init.as_fd())?;
        }
        let Some(cg) = &stored.cgroup else {
            return Ok(());
        };
        for pid in crate::cgroups::tree::pids(cg) {
            let Some(pid) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            if pid.as_raw_nonzero().get() == stored.pid {
                continue;
            }
            if let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
                send(fd.as_fd())?;
            }
        }
        crate::cgroups::thaw_after_kill(cg, signal);
        Ok(())
    }

    /// Deletes container `id` (`corral delete`). A created container is
    /// killed first, as runc does; a running one only with `force`.
    pub async fn delete_by_id(&self, id: &str, force: bool) -> Result<()> {
        let dir = self.state_dir()?;
        let _lock = dir.lock(id)?;
        let stored = dir.read(id)?;
        let status = stored.status();
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(Error::State {
                id: id.to_owned(),
                state: status.name(),
                operation: "delete",
            });
        }
        if let Some(pidfd) = stored.open_pidfd()? {
            let exited = exit_notifier(pidfd.as_fd())?;
            crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL)
                .or_else(|e| {
                    if e.raw_os_error() == Some(libc::ESRCH) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| Error::sys(format!("kill container {id:?}"), e))?;
            if let Some(cg) = &stored.cgroup {
                crate::cgroups::thaw_after_kill(cg, libc::SIGKILL);
            }
            let _ = exited
                .readable()
                .await
                .map_err(|e| Error::sys("wait for exit", e))?;
        }
        if let Some(cg) = &stored.cgroup {
            crate::cgroups::tree::remove(cg).await?;
        }
        dir.remove(id)?;
        if let Some(ctx) = crate::hooks::HookContext::of_stored(&stored) {
            let kind = crate::hooks::Kind::Poststop;
            ctx.run_logged(kind, id, "stopped", stored.pid).await;
        }
        Ok(())
    }

    fn live_pidfd(&self, stored: &StoredState, operation: &'static str) -> Result<OwnedFd> {
        stored.open_pidfd()?.ok_or_else(|| Error::State {
            id: stored.id.clone(),
            state: Status::Stopped.name(),
            operation,
        })
    }
}
