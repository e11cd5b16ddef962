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
//! Requests are made with blocking calls under a mutex, in the create
//! path, where the direct clone blocks as long (its `CLONE_VFORK` child
//! runs until the exec); an answer that does not come within
//! [`ANSWER_WITHIN`] (a stopped or stuck resident init) fails that create.
//! A request that could not be sent restarts the resident init and is
//! sent again, once; one that was sent but got no answer is not repeated
//! (the resident init may have cloned): the create fails and the next one
//! restarts it. Two failures in a row and containers are cloned directly
//! from then on.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use corral_protocol::{ParentEnd, SpawnRequest, ToParent};
use rustix::process::{Pid, WaitId, WaitIdOptions};

use crate::sys::{ChildPlan, InitExec, Spawned};

/// The resident init of one runtime, started at its first use.
#[derive(Debug, Default)]
pub(crate) struct Resident {
    state: Mutex<State>,
    /// Stop pipes of the keeper threads of resident inits that died and
    /// were replaced: the containers they cloned are those threads'
    /// children, and their parent-death signal fires if the thread exits.
    /// Kept until the runtime goes.
    retired: Mutex<Vec<OwnedFd>>,
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
    /// Its close ends the keeper thread's wait.
    stop: Option<OwnedFd>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Closing the socket (after this) would end it too; the kill makes
        // the reap below immediate.
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED);
    }
}

/// What went wrong with a request.
enum Failure {
    /// The request could not be sent: the resident init is gone. It can be
    /// restarted and asked again.
    NotSent,
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
    pub(crate) fn spawn(
        &self,
        init: BorrowedFd<'_>,
        req: &SpawnRequest,
        fds: &[BorrowedFd<'_>],
    ) -> Option<std::io::Result<Spawned>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
            let State::Live(live) = &*state else {
                return None;
            };
            let failure = match request(live, req, fds) {
                Ok(spawned) => return Some(Ok(spawned)),
                Err(Failure::Clone(e)) => return Some(Err(e)),
                Err(failure) => failure,
            };
            // Killed and reaped by the drop; its keeper thread stays, as
            // the containers it cloned are that thread's children.
            if let State::Live(mut live) = std::mem::take(&mut *state) {
                if let Some(stop) = live.stop.take() {
                    self.retired
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(stop);
                }
            }
            if matches!(failure, Failure::Lost) {
                return Some(Err(std::io::Error::other(
                    "the resident init sent no answer (it is restarted for the next create)",
                )));
            }
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

fn request(live: &Live, req: &SpawnRequest, fds: &[BorrowedFd<'_>]) -> Result<Spawned, Failure> {
    live.socket
        .send_spawn(req, fds)
        .map_err(|_| Failure::NotSent)?;
    // The answer, the resident init's exit, or the time limit: whichever
    // comes first.
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
    match live.socket.recv() {
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
    Ok(Live {
        socket: ParentEnd::from_fd(parent_end),
        pidfd: spawned.pidfd,
        stop: Some(stop_write),
    })
}
