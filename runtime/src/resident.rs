//! The resident init: one `corral-init` per `Runtime`, exec'd once, that
//! clones each container's init instead of the runtime exec'ing a fresh
//! one (`runtime-init/src/resident.rs` is its other half).
//!
//! An exec'd init pays, per container, the exec of a 1.5 MB static binary
//! and glibc's start-up, which on a VM is dominated by `cpuid` exits:
//! `fork`+`exec` of the init measured 450 µs against 93–100 µs for a
//! `fork` (docs/performance.md). The resident init answers a `spawn`
//! request with `clone3(CLONE_PARENT | CLONE_PIDFD | namespaces)`: the new
//! process is this process's child, exactly as an exec'd init is, so the
//! pidfd, `waitid`, the reaper and everything after the clone are
//! unchanged.
//!
//! The resident init is started from a thread of its own that lives as
//! long as the runtime: `PR_SET_PDEATHSIG` fires when the parent *thread*
//! exits, and the resident init and every container it clones have that
//! thread as their parent. The thread only waits for the runtime to go.
//!
//! Requests are sent under an async mutex, one at a time, and the answer
//! is awaited on the reactor: no thread blocks while the resident init
//! clones. Once sent, a request is seen through: a create dropped before
//! the answer reads it as it goes (blocking, a clone away at most), so
//! that no answer is left unread and no clone behind (it is killed and
//! reaped). An answer that does not come within
//! [`ANSWER_WITHIN`] (a stopped or stuck resident init) fails that create.
//! A request that could not be sent restarts the resident init and is
//! sent again, once; one that was sent but got no answer is not repeated
//! (the resident init may have cloned): the create fails and the next one
//! restarts it. Two failures in a row and containers are cloned directly
//! from then on.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use corral_protocol::{ParentEnd, SpawnRequest, ToParent};
use rustix::process::{Pid, WaitId, WaitIdOptions};
use tokio::io::unix::AsyncFd;

use crate::sys::{ChildPlan, InitExec, Spawned};

/// The resident init of one runtime, started at its first use.
#[derive(Debug, Default)]
pub(crate) struct Resident {
    state: Arc<tokio::sync::Mutex<State>>,
    /// Stop pipes of the keeper threads of resident inits that died and
    /// were replaced: the containers they cloned are those threads'
    /// children, and their parent-death signal fires if the thread exits.
    /// Kept until the runtime goes.
    retired: Arc<Mutex<Vec<OwnedFd>>>,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Unstarted,
    Live(Live),
    /// Could not be started, or failed twice in a row: containers are
    /// cloned directly.
    Failed,
}

#[derive(Debug)]
struct Live {
    socket: ParentEnd,
    pidfd: OwnedFd,
    /// Bounds the wait for an answer (armed per request).
    timer: OwnedFd,
    /// Its close ends the keeper thread's wait.
    stop: Option<OwnedFd>,
    /// `socket`, `pidfd` and `timer` on the reactor of the tokio runtime
    /// that asked last (copies of the fds, registered again when another
    /// runtime asks).
    watched: Option<Watched>,
}

#[derive(Debug)]
struct Watched {
    runtime: tokio::runtime::Id,
    socket: AsyncFd<OwnedFd>,
    pidfd: AsyncFd<OwnedFd>,
    timer: AsyncFd<OwnedFd>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Closing the socket (after this) would end it too; the kill makes
        // the reap below immediate. (Blocking, so that a dropped runtime
        // leaves no child behind when its drop returns; a resident init
        // that SIGKILL cannot end at once, stuck in the kernel, would hold
        // this thread as long.)
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED);
    }
}

/// What went wrong with a request that was sent. (One that could not be
/// sent found the resident init gone: it is restarted and asked again.)
enum Failure {
    /// Sent, but no answer came (it died, hung past [`ANSWER_WITHIN`], or
    /// spoke out of turn). It may have cloned, so the request is not
    /// repeated: the create fails, and the next one restarts it.
    Lost,
    /// It answered: the clone failed.
    Clone(std::io::Error),
}

/// How long a clone may take the resident init before it is given up. A
/// clone takes well under a millisecond; this only bounds a stopped or
/// stuck one, which would otherwise hold every create behind the mutex.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

impl Resident {
    /// Clones a container's init through the resident init of `init`.
    /// `fds`, in order: the init socket's child end, fds 0-2, then the
    /// cgroup fds `req` counts. `None` when there is no resident init to
    /// ask (the caller then clones directly).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropped after the request was sent, it reads the
    /// answer (blocking, for at most [`ANSWER_WITHIN`]) and kills and reaps
    /// the clone nobody awaits.
    pub(crate) async fn spawn(
        &self,
        init: BorrowedFd<'_>,
        req: &SpawnRequest,
        fds: &[BorrowedFd<'_>],
    ) -> Option<std::io::Result<Spawned>> {
        let mut state = Arc::clone(&self.state).lock_owned().await;
        for attempt in 0..2 {
            if matches!(*state, State::Unstarted) {
                *state = match start(init) {
                    Ok(live) => State::Live(live),
                    Err(e) => {
                        tracing::debug!(error = %e, "start the resident init");
                        State::Failed
                    }
                };
            }
            let State::Live(live) = &mut *state else {
                return None;
            };
            if let Err(e) = watch(live) {
                // Not the resident init's fault (no fd left, no reactor):
                // this container is cloned directly.
                tracing::debug!(error = %e, "watch the resident init's socket");
                return None;
            }
            if live.socket.send_spawn(req, fds).is_ok() {
                // From here the answer must be read whatever happens to
                // this future: `InFlight` reads it in its drop if the
                // future goes first.
                let mut flight = InFlight {
                    state: Some(state),
                    retired: Arc::clone(&self.retired),
                };
                let answer = answer(flight.state.as_mut().expect("set above")).await;
                let mut state = flight.state.take().expect("taken only here");
                if let Err(Failure::Lost) = &answer {
                    // Killed and reaped; the next create starts another.
                    retire(&mut state, &self.retired);
                }
                return match answer {
                    Ok(spawned) => Some(Ok(spawned)),
                    Err(Failure::Clone(e)) => Some(Err(e)),
                    Err(Failure::Lost) => Some(Err(std::io::Error::other(
                        "the resident init sent no answer (it is restarted for the next create)",
                    ))),
                };
            }
            // Not sent: gone. Killed and reaped by the drop; restarted once.
            retire(&mut state, &self.retired);
            if attempt == 1 {
                // Gone twice in a row: clone directly from now on rather
                // than start one (and a thread) per create.
                tracing::warn!("the resident init failed twice; cloning directly");
                *state = State::Failed;
            }
        }
        None
    }
}

/// A sent request whose answer is not read yet. Dropped before that (the
/// create was dropped), it reads the answer itself, blocking, so that the
/// next request does not take it for its own, and kills and reaps the
/// clone it names, which nobody awaits.
struct InFlight {
    state: Option<tokio::sync::OwnedMutexGuard<State>>,
    retired: Arc<Mutex<Vec<OwnedFd>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        // Read here, blocking: the answer is normally a clone away, and at
        // most ANSWER_WITHIN. (A task could be dropped unrun by a runtime
        // shutting down, or parked on a reactor nobody drives, with the
        // mutex held.)
        let answer = answer_blocking(&mut state);
        if let Err(Failure::Lost) = &answer {
            retire(&mut state, &self.retired);
        }
        drop(state);
        if let Ok(orphan) = answer {
            // Nobody will wait for this clone.
            match crate::pidfd::PidFd::new(orphan.pidfd, orphan.pid) {
                Ok(process) => crate::reaper::kill_and_reap(process, None),
                Err(e) => tracing::warn!(error = %e, "reap a clone nobody awaits"),
            }
        }
    }
}

/// Takes the live resident init out of `state` (its drop kills and reaps
/// it) and keeps its keeper thread: the containers it cloned are that
/// thread's children.
fn retire(state: &mut State, retired: &Mutex<Vec<OwnedFd>>) {
    if let State::Live(mut live) = std::mem::take(state) {
        if let Some(stop) = live.stop.take() {
            retired.lock().unwrap_or_else(|e| e.into_inner()).push(stop);
        }
    }
}

/// Registers the resident init's fds with the current tokio runtime's
/// reactor, unless they already are.
fn watch(live: &mut Live) -> std::io::Result<()> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(std::io::Error::other)?
        .id();
    if live.watched.as_ref().is_some_and(|w| w.runtime == runtime) {
        return Ok(());
    }
    live.watched = None;
    let readable = tokio::io::Interest::READABLE;
    live.watched = Some(Watched {
        runtime,
        socket: crate::sys::register(live.socket.as_fd().try_clone_to_owned()?, readable)?,
        pidfd: crate::sys::register(live.pidfd.try_clone()?, readable)?,
        timer: crate::sys::register(live.timer.try_clone()?, readable)?,
    });
    Ok(())
}

/// Waits for the answer to the request just sent: the answer, the
/// resident init's exit, or the time limit, whichever comes first.
async fn answer(state: &mut State) -> Result<Spawned, Failure> {
    let State::Live(live) = state else {
        return Err(Failure::Lost);
    };
    let watched = live.watched.as_ref().ok_or(Failure::Lost)?;
    let limit = rustix::time::Itimerspec {
        it_interval: rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: rustix::time::Timespec {
            tv_sec: ANSWER_WITHIN.as_secs() as i64,
            tv_nsec: 0,
        },
    };
    rustix::time::timerfd_settime(
        &live.timer,
        rustix::time::TimerfdTimerFlags::empty(),
        &limit,
    )
    .map_err(|_| Failure::Lost)?;
    let reply = loop {
        tokio::select! {
            ready = watched.socket.readable() => {
                let Ok(mut guard) = ready else { break None };
                // The socket is non-blocking: a spurious wake-up is EAGAIN.
                match live.socket.recv() {
                    Err(corral_protocol::Error::Io { errno, .. }) if errno == rustix::io::Errno::AGAIN => {
                        guard.clear_ready();
                    }
                    other => break Some(other),
                }
            }
            _ = watched.pidfd.readable() => break None,
            ready = watched.timer.readable() => {
                let Ok(mut guard) = ready else { break None };
                // Readiness may be left over from a timer that fired as
                // an earlier answer came (disarming resets its count): a
                // read that finds no expiry is not the limit.
                let mut ticks = [0u8; 8];
                match rustix::io::read(&live.timer, &mut ticks) {
                    Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                    _ => break None,
                }
            }
        }
    };
    // Disarmed, so that an expiry left over cannot end the next wait.
    let off = rustix::time::Itimerspec {
        it_interval: rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    };
    let _ =
        rustix::time::timerfd_settime(&live.timer, rustix::time::TimerfdTimerFlags::empty(), &off);
    let Some(reply) = reply else {
        return Err(Failure::Lost);
    };
    decode(reply)
}

/// [`answer`] without a reactor: `poll(2)` on the socket and the resident
/// init's pidfd, for at most [`ANSWER_WITHIN`].
fn answer_blocking(state: &mut State) -> Result<Spawned, Failure> {
    let State::Live(live) = state else {
        return Err(Failure::Lost);
    };
    let limit = rustix::time::Timespec {
        tv_sec: ANSWER_WITHIN.as_secs() as i64,
        tv_nsec: 0,
    };
    loop {
        let mut polled = [
            rustix::event::PollFd::new(&live.socket, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&live.pidfd, rustix::event::PollFlags::IN),
        ];
        match rustix::event::poll(&mut polled, Some(&limit)) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(n) if n > 0 && !polled[0].revents().is_empty() => break,
            _ => return Err(Failure::Lost),
        }
    }
    let reply = live.socket.recv();
    decode(reply)
}

/// The resident init's answer to a `spawn`.
fn decode(reply: corral_protocol::Result<(ToParent, Option<OwnedFd>)>) -> Result<Spawned, Failure> {
    match reply {
        Ok((ToParent::ExecPid(p), Some(pidfd))) => {
            let pid = Pid::from_raw(p.pid).ok_or(Failure::Lost)?;
            Ok(Spawned { pid, pidfd })
        }
        Ok((ToParent::Error(e), _)) => Err(Failure::Clone(std::io::Error::from_raw_os_error(
            e.errno.unwrap_or(libc::EIO),
        ))),
        _ => Err(Failure::Lost),
    }
}

/// Starts the resident init from a keeper thread (see the module docs).
fn start(init: BorrowedFd<'_>) -> std::io::Result<Live> {
    let (parent_end, child_end) = corral_protocol::socketpair().map_err(std::io::Error::other)?;
    let (stop_read, stop_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let init = init.try_clone_to_owned()?;
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("corral-resident".into())
        .spawn(move || {
            let argv: [*const libc::c_char; 4] = [
                c"corral-init".as_ptr(),
                c"3".as_ptr(),
                c"resident".as_ptr(),
                std::ptr::null(),
            ];
            let envp: [*const libc::c_char; 1] = [std::ptr::null()];
            let plan = ChildPlan::plain(
                [Some(null.as_fd()), Some(null.as_fd()), Some(null.as_fd())],
                child_end.as_fd(),
                InitExec::Fd(init.as_fd()),
                &argv,
                &envp,
            );
            let spawned = crate::sys::spawn_init(0, &plan);
            drop((child_end, null, init));
            let _ = tx.send(spawned);
            // The resident init and the containers it clones are this
            // thread's children: wait here until the runtime goes.
            let mut byte = [0u8];
            while let Err(rustix::io::Errno::INTR) = rustix::io::read(&stop_read, &mut byte) {}
        })?;
    let spawned = rx
        .recv()
        .map_err(|_| std::io::Error::other("the resident init's thread ended"))??;
    let timer = rustix::time::timerfd_create(
        rustix::time::TimerfdClockId::Monotonic,
        rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
    )?;
    // Non-blocking: answers are awaited on the reactor. (A request is one
    // small datagram on an otherwise empty socket: its send never waits.)
    rustix::io::ioctl_fionbio(&parent_end, true)?;
    Ok(Live {
        socket: ParentEnd::from_fd(parent_end),
        pidfd: spawned.pidfd,
        timer,
        stop: Some(stop_write),
        watched: None,
    })
}
