//! The io_uring stdio engine: one ring per [`Runtime`](crate::Runtime),
//! driven by one dedicated thread, reached from any tokio runtime through a
//! command channel and an eventfd.
//!
//! This module owns choosing the backend ([`Backend`]) and the handle that
//! tasks use to hand copies to the ring thread. The thread's state machines
//! are in `driver`; the unsafe submission code is in `crate::sys::uring`.
//! The tokio `AsyncFd` fallback is in `crate::splice`.
//!
//! tokio-uring is not used: its runtime cannot run inside a multi-thread
//! tokio runtime, and it has no splice, tee or waitid operation
//! (`docs/architecture.md`).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{mpsc as tmpsc, oneshot};

mod driver;

/// Which machinery copies container output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Each copy on the faster machinery as measured
    /// (`docs/performance.md`, stdio): piped output on io_uring, output
    /// into files with `splice(2)` on tokio (the kernel hands every
    /// io_uring splice to a worker thread, which costs more than it
    /// saves). Without io_uring, everything on the fallback (with a
    /// warning in the log).
    #[default]
    Auto,
    /// Everything on io_uring, files included; building the runtime fails
    /// where it is unavailable.
    IoUring,
    /// tokio `AsyncFd` and `splice(2)` on the caller's runtime.
    Fallback,
}

/// Bytes one piped output may have read from its pipe and not yet handed
/// to its reader: this many buffers of [`PIPED_BUF`] bytes.
pub(crate) const PIPED_BUFS: usize = 4;
/// The size of one piped-output buffer (the default pipe capacity).
pub(crate) const PIPED_BUF: usize = 64 * 1024;

/// What the ring thread is asked to do.
#[derive(Debug)]
enum Command {
    /// Splice `pipe` into `file` until EOF, then report the byte count.
    CopyToFile {
        pipe: OwnedFd,
        file: OwnedFd,
        done: oneshot::Sender<io::Result<u64>>,
    },
    /// Read `pipe` into buffers sent to `chunks` until EOF.
    ReadPipe {
        job: u64,
        pipe: OwnedFd,
        chunks: tmpsc::UnboundedSender<io::Result<Vec<u8>>>,
    },
    /// A reader is done with a buffer of job `job`: it may be refilled.
    Refill { job: u64, buf: Vec<u8> },
    /// A reader went away: stop job `job`.
    Close { job: u64 },
}

/// A handle on one ring thread; cheap to clone.
///
/// # Drop
/// When the last handle (the runtime's and every piped reader's) is
/// dropped, the thread finishes the file copies still running (each ends
/// at its pipe's EOF) and exits, closing the ring.
#[derive(Clone, Debug)]
pub(crate) struct RingHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    wake: Arc<OwnedFd>,
    next_job: AtomicU64,
}

impl RingHandle {
    /// Sets up a ring and starts its thread.
    pub fn start() -> io::Result<RingHandle> {
        let ring = crate::sys::uring::Ring::new(256)?;
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        let wake = Arc::new(wake);
        let (tx, rx) = mpsc::channel();
        let thread_wake = wake.clone();
        std::thread::Builder::new()
            .name("corral-uring".into())
            .spawn(move || driver::run(ring, thread_wake, rx))?;
        Ok(RingHandle {
            shared: Arc::new(Shared {
                commands: Mutex::new(Some(tx)),
                wake,
                next_job: AtomicU64::new(0),
            }),
        })
    }

    /// Copies `pipe` to `file` with `IORING_OP_SPLICE` until EOF; the
    /// returned channel gets the byte count.
    pub fn copy_to_file(&self, pipe: OwnedFd, file: OwnedFd) -> oneshot::Receiver<io::Result<u64>> {
        let (done, rx) = oneshot::channel();
        self.send(Command::CopyToFile { pipe, file, done });
        rx
    }

    /// Reads `pipe` on the ring, into at most [`PIPED_BUFS`] buffers at a
    /// time; returns the job and the chunks' channel.
    pub fn read_pipe(&self, pipe: OwnedFd) -> (u64, tmpsc::UnboundedReceiver<io::Result<Vec<u8>>>) {
        let job = self.shared.next_job.fetch_add(1, Ordering::Relaxed);
        let (chunks, rx) = tmpsc::unbounded_channel();
        self.send(Command::ReadPipe { job, pipe, chunks });
        (job, rx)
    }

    /// Gives a drained buffer back to `job`.
    pub fn refill(&self, job: u64, buf: Vec<u8>) {
        self.send(Command::Refill { job, buf });
    }

    /// Stops `job` (its reader is gone).
    pub fn close(&self, job: u64) {
        self.send(Command::Close { job });
    }

    fn send(&self, command: Command) {
        let sent = self
            .shared
            .commands
            .lock()
            .expect("the command lock is never held across a panic")
            .as_ref()
            .map(|tx| tx.send(command).is_ok());
        if sent == Some(true) {
            wake(&self.shared.wake);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Disconnect first, then wake: the thread must see the channel
        // closed when it drains it after this wake-up.
        if let Ok(mut tx) = self.commands.lock() {
            tx.take();
        }
        wake(&self.wake);
    }
}

fn wake(eventfd: &OwnedFd) {
    // An eventfd counter write fails only on overflow (EAGAIN), when a
    // wake-up is pending anyway.
    let _ = rustix::io::write(eventfd, &1u64.to_ne_bytes());
}

/// The copying machinery a runtime settled on.
#[derive(Debug)]
pub(crate) enum Engine {
    /// The ring thread, for piped output and, if `files_on_ring`, for
    /// copies into files (else those run as with `Fallback`).
    Ring {
        ring: RingHandle,
        files_on_ring: bool,
    },
    /// Tasks on the caller's tokio runtime.
    Fallback,
}

impl Engine {
    /// Settles `backend`: `Auto` tries io_uring and falls back with a
    /// warning; `IoUring` fails where `io_uring_setup(2)` does.
    pub fn choose(backend: Backend) -> io::Result<Engine> {
        match backend {
            Backend::Fallback => Ok(Engine::Fallback),
            Backend::IoUring => RingHandle::start().map(|ring| Engine::Ring {
                ring,
                files_on_ring: true,
            }),
            // Files stay off the ring under Auto: on 6.18 the tokio splice
            // beat every ring variant tried (docs/performance.md, stdio).
            Backend::Auto => match RingHandle::start() {
                Ok(ring) => Ok(Engine::Ring {
                    ring,
                    files_on_ring: false,
                }),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "io_uring unavailable: stdio copies fall back to tokio AsyncFd"
                    );
                    Ok(Engine::Fallback)
                }
            },
        }
    }
}
