//! Process handles over pidfds: exit waits that wake on the pidfd becoming
//! readable (no polling, no thread, no SIGCHLD handler) and signals that
//! can never reach a recycled pid.
//!
//! This module owns reaping: `waitid(P_PIDFD, ..)` is called only here, and
//! the status is cached so that any number of waiters see it.
//!
//! A container's init is reaped late: its exit is read with `WNOWAIT`, which
//! leaves the zombie, and the zombie is released at `delete` or when the
//! handle drops ([`PidFd::release`]). Releasing a zombie is the larger part
//! of a `waitid` (about 10 µs here: the pid, its pid namespace, its /proc
//! entries), and a task awaiting the exit does not need it done first. Other
//! processes (`exec`, helpers, and the init of a container that joined
//! another's pid namespace) are reaped at once: a zombie left in a pid
//! namespace would keep that namespace's init's exit from completing.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use rustix::process::{Pid, WaitId, WaitIdOptions};
use tokio::io::unix::AsyncFd;

use crate::ExitStatus;
use crate::mount_ns_hold::{Hold, Teardown};

/// A child process of this runtime, by pidfd.
#[derive(Debug)]
pub(crate) struct PidFd {
    fd: AsyncFd<OwnedFd>,
    pid: Pid,
    /// Whether an exit seen is left a zombie until [`PidFd::release`].
    defer_reap: bool,
    state: Mutex<State>,
}

/// What is known of the process, under one lock.
#[derive(Debug, Default)]
struct State {
    /// The exit status, once seen.
    status: Option<ExitStatus>,
    /// The zombie was released.
    reaped: bool,
    /// The process's mount namespace, held until the reap
    /// (`crate::mount_ns_hold`).
    mount_ns: Option<Hold>,
    /// Its teardown, started at the reap.
    teardown: Teardown,
}

impl PidFd {
    /// Registers `fd` (from `CLONE_PIDFD` or `pidfd_open`) with the reactor.
    /// The process is reaped as soon as its exit is seen.
    pub fn new(fd: OwnedFd, pid: Pid) -> io::Result<Self> {
        Self::build(fd, pid, false)
    }

    /// As [`PidFd::new`], for a container's init: an exit seen leaves the
    /// zombie until [`PidFd::release`] or the handle's drop.
    pub fn new_reaped_late(fd: OwnedFd, pid: Pid) -> io::Result<Self> {
        Self::build(fd, pid, true)
    }

    fn build(fd: OwnedFd, pid: Pid, defer_reap: bool) -> io::Result<Self> {
        Ok(PidFd {
            fd: crate::sys::register(fd, tokio::io::Interest::READABLE)?,
            pid,
            defer_reap,
            state: Mutex::new(State::default()),
        })
    }

    /// Keeps `hold` until the process is reaped through this handle.
    pub fn hold_mount_ns(&self, hold: Hold) {
        self.state().mount_ns = Some(hold);
    }

    /// The pidfd.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// Host pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The exit status if the process has exited, reaping it unless the
    /// reap is deferred ([`PidFd::new_reaped_late`]).
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let mut state = self.state();
        if let Some(s) = state.status {
            return Ok(Some(s));
        }
        let mut options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        if self.defer_reap {
            options |= WaitIdOptions::NOWAIT;
        }
        let Some(raw) = rustix::process::waitid(WaitId::PidFd(self.fd.get_ref().as_fd()), options)?
        else {
            return Ok(None);
        };
        let s = match (raw.exit_status(), raw.terminating_signal()) {
            (Some(code), _) => ExitStatus::from_code(code),
            (None, Some(signal)) => ExitStatus::from_signal(signal, raw.dumped()),
            (None, None) => return Ok(None),
        };
        state.status = Some(s);
        if !self.defer_reap {
            state.reaped();
        }
        Ok(Some(s))
    }

    /// Releases the zombie of an exited process whose reap was deferred
    /// (nothing to do before the exit was seen or once released), and
    /// returns a future that ends when the mount namespace held for it, if
    /// any, is torn down. The future borrows nothing, so it can run beside
    /// other work on the handle.
    pub fn release(
        &self,
    ) -> io::Result<impl std::future::Future<Output = ()> + Send + 'static + use<>> {
        let mut state = self.state();
        if state.status.is_some() && !state.reaped {
            // The zombie is there (its exit was seen): this does not block.
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
            rustix::process::waitid(WaitId::PidFd(self.fd.get_ref().as_fd()), options)?;
            state.reaped();
        }
        let teardown = state.teardown.take();
        Ok(async move {
            if let Some(task) = teardown {
                // A close cannot fail; a panicked task has nothing to report.
                let _ = task.await;
            }
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no panics while holding a pidfd's state lock")
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

    /// Sends `signal` through the pidfd. Fails with `ESRCH` once the
    /// process has exited, even if its pid was reused.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        if self.exited() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        crate::sys::pidfd_send_signal(self.fd.get_ref().as_fd(), signal)
    }

    /// Whether the process's exit was seen through this handle.
    pub fn exited(&self) -> bool {
        self.state().status.is_some()
    }

    /// `SIGKILL` then a blocking reap, for paths with no reactor (drop
    /// outside a runtime). The wait is short: a killed process exits at once.
    pub fn kill_and_reap_blocking(&self) {
        let _ = self.signal(libc::SIGKILL);
        let mut state = self.state();
        if !state.reaped {
            let _ = rustix::process::waitid(
                WaitId::PidFd(self.fd.get_ref().as_fd()),
                WaitIdOptions::EXITED,
            );
            state.reaped();
        }
    }
}

impl State {
    /// Marks the process reaped and starts its namespace's teardown, off
    /// the caller's task; under the lock, so that whoever sees it reaped
    /// also finds the teardown to await.
    fn reaped(&mut self) {
        self.reaped = true;
        if let Some(hold) = self.mount_ns.take() {
            self.teardown = hold.release();
        }
    }
}

impl Drop for PidFd {
    /// A zombie left by a deferred reap is released with the handle.
    fn drop(&mut self) {
        let _ = self.release();
    }
}
