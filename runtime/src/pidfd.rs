//! Process handles over pidfds: exit waits that wake on the pidfd becoming
//! readable (no polling, no thread, no SIGCHLD handler) and signals that
//! can never reach a recycled pid.
//!
//! This module owns reaping: `waitid(P_PIDFD, ..)` is called only here, and
//! the status is cached so that any number of waiters see it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use rustix::process::{Pid, WaitId, WaitIdOptions};
use tokio::io::unix::AsyncFd;

use crate::ExitStatus;

/// A child process of this runtime, by pidfd.
#[derive(Debug)]
pub(crate) struct PidFd {
    fd: AsyncFd<OwnedFd>,
    pid: Pid,
    status: Mutex<Option<ExitStatus>>,
    /// The process's mount namespace, held until the exit is reaped
    /// (`crate::mount_ns_hold`).
    mount_ns: Mutex<Option<crate::mount_ns_hold::Hold>>,
    /// Its teardown once released at the reap.
    teardown: Mutex<crate::mount_ns_hold::Teardown>,
}

impl PidFd {
    /// Registers `fd` (from `CLONE_PIDFD` or `pidfd_open`) with the reactor.
    pub fn new(fd: OwnedFd, pid: Pid) -> io::Result<Self> {
        Ok(PidFd {
            fd: crate::sys::register(fd, tokio::io::Interest::READABLE)?,
            pid,
            status: Mutex::new(None),
            mount_ns: Mutex::new(None),
            teardown: Mutex::new(None),
        })
    }

    /// Keeps `hold` until the process is reaped through this handle.
    pub fn hold_mount_ns(&self, hold: crate::mount_ns_hold::Hold) {
        *self
            .mount_ns
            .lock()
            .expect("no panics while holding the mount namespace lock") = Some(hold);
    }

    /// The pidfd.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// Host pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The exit status if the process has exited, reaping it.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let mut status = self
            .status
            .lock()
            .expect("no panics while holding the status lock");
        if let Some(s) = *status {
            return Ok(Some(s));
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        let Some(raw) = rustix::process::waitid(WaitId::PidFd(self.fd.get_ref().as_fd()), options)?
        else {
            return Ok(None);
        };
        let s = match (raw.exit_status(), raw.terminating_signal()) {
            (Some(code), _) => ExitStatus::from_code(code),
            (None, Some(signal)) => ExitStatus::from_signal(signal, raw.dumped()),
            (None, None) => return Ok(None),
        };
        *status = Some(s);
        // Reaped: the namespace's teardown can start now, off this task.
        // Still under the status lock, so that whoever sees the status
        // also finds the teardown to await.
        let hold = self
            .mount_ns
            .lock()
            .expect("no panics while holding the mount namespace lock")
            .take();
        if let Some(hold) = hold {
            *self.teardown_slot() = hold.release();
        }
        drop(status);
        Ok(Some(s))
    }

    /// Waits for exit: readiness of the pidfd, then `waitid`.
    ///
    /// # Cancel safety
    /// Cancel-safe: the status is cached by whichever call reaps, so a
    /// dropped future loses nothing and concurrent callers all see it.
    pub async fn wait(&self) -> io::Result<ExitStatus> {
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            let mut guard = self.fd.readable().await?;
            if self.try_wait()?.is_none() {
                guard.clear_ready();
            }
        }
    }

    /// A future that ends when the mount namespace held for this process,
    /// if any, is torn down. Take it after the process was reaped; it
    /// borrows nothing, so it can run beside other work on the handle.
    pub fn mount_ns_teardown(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let teardown = self.teardown_slot().take();
        async move {
            if let Some(task) = teardown {
                // A close cannot fail; a panicked task has nothing to report.
                let _ = task.await;
            }
        }
    }

    fn teardown_slot(&self) -> std::sync::MutexGuard<'_, crate::mount_ns_hold::Teardown> {
        self.teardown
            .lock()
            .expect("no panics while holding the teardown lock")
    }

    /// Sends `signal` through the pidfd. Fails with `ESRCH` once the
    /// process has exited, even if its pid was reused.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        if self
            .status
            .lock()
            .expect("no panics while holding the status lock")
            .is_some()
        {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        crate::sys::pidfd_send_signal(self.fd.get_ref().as_fd(), signal)
    }

    /// Whether the process was reaped through this handle.
    pub fn reaped(&self) -> bool {
        self.status
            .lock()
            .expect("no panics while holding the status lock")
            .is_some()
    }

    /// `SIGKILL` then a blocking reap, for paths with no reactor (drop
    /// outside a runtime). The wait is short: a killed process exits at once.
    pub fn kill_and_reap_blocking(&self) {
        let _ = self.signal(libc::SIGKILL);
        let _ = rustix::process::waitid(
            WaitId::PidFd(self.fd.get_ref().as_fd()),
            WaitIdOptions::EXITED,
        );
    }
}
