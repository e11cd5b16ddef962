//! An io_uring instance with a safe submission API: each operation owns the
//! fds and the buffer the kernel uses until its completion is reaped, so no
//! caller can free memory or close an fd under an in-flight request.
//!
//! This module owns `io_uring_setup(2)`, pushing SQEs and reaping CQEs. It
//! does not decide what to copy where: that is `crate::uring::driver`.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use io_uring::{IoUring, opcode, types};

/// The tag of completions the caller never asked about (cancellations).
const INTERNAL: u64 = u64::MAX;

/// One operation to submit; its fds and buffer stay alive in the ring until
/// the completion comes back.
#[derive(Debug)]
pub enum Op {
    /// `IORING_OP_POLL_ADD` for `POLLIN` (one shot): completes when `fd` is
    /// readable or hung up, without tying up an io-wq worker.
    PollIn(Arc<OwnedFd>),
    /// `IORING_OP_READ` into the spare capacity of the buffer (offset 0:
    /// the fd is a pipe). On completion the buffer's length grows by the
    /// bytes read.
    Read(Arc<OwnedFd>, Vec<u8>),
    /// `IORING_OP_SPLICE` of up to `len` bytes from the pipe `from` to
    /// `to` at its file position, with `SPLICE_F_NONBLOCK` (an empty pipe
    /// fails with `EAGAIN` instead of parking a worker).
    Splice {
        /// The pipe to drain.
        from: Arc<OwnedFd>,
        /// The destination (a file or a pipe).
        to: Arc<OwnedFd>,
        /// At most this many bytes.
        len: u32,
    },
}

/// Names one in-flight operation, for [`Ring::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId(u64);

/// A reaped completion.
#[derive(Debug)]
pub struct Completion {
    /// The tag given to [`Ring::submit`].
    pub tag: u64,
    /// The CQE's `res`: a count (bytes, poll events) or the error.
    pub result: io::Result<u32>,
    /// The buffer of a [`Op::Read`], back to its owner.
    pub buf: Option<Vec<u8>>,
}

/// What the kernel may still touch for one operation.
#[derive(Debug)]
struct Held {
    tag: u64,
    _fds: [Option<Arc<OwnedFd>>; 2],
    buf: Option<Vec<u8>>,
}

/// An io_uring with the resources of every in-flight operation.
///
/// # Drop
/// Cancels every in-flight operation and waits for its completion, so the
/// kernel never writes into a freed buffer; if the ring fails while
/// draining, the remaining buffers are leaked rather than freed.
pub struct Ring {
    ring: IoUring,
    held: HashMap<u64, Held>,
    next: u64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("fd", &self.ring.as_raw_fd())
            .field("in_flight", &self.held.len())
            .finish()
    }
}

impl Ring {
    /// `io_uring_setup(entries, ..)`—
    /// <https://man7.org/linux/man-pages/man2/io_uring_setup.2.html>.
    /// Fails with `ENOSYS`, or `EPERM` under `io_uring_disabled` or
    /// seccomp, where the kernel offers no io_uring.
    pub fn new(entries: u32) -> io::Result<Ring> {
        Ok(Ring {
            ring: IoUring::new(entries)?,
            held: HashMap::new(),
            next: 0,
        })
    }

    /// Queues `op`; its completion will carry `tag`.
    pub fn submit(&mut self, tag: u64, op: Op) -> io::Result<OpId> {
        debug_assert_ne!(tag, INTERNAL, "tag u64::MAX is reserved");
        let id = self.next_id();
        let (entry, held) = match op {
            Op::PollIn(fd) => (
                opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32).build(),
                Held {
                    tag,
                    _fds: [Some(fd), None],
                    buf: None,
                },
            ),
            Op::Read(fd, mut buf) => {
                let spare = buf.spare_capacity_mut();
                let len = u32::try_from(spare.len()).unwrap_or(u32::MAX);
                let entry =
                    opcode::Read::new(types::Fd(fd.as_raw_fd()), spare.as_mut_ptr().cast(), len)
                        .build();
                let held = Held {
                    tag,
                    _fds: [Some(fd), None],
                    buf: Some(buf),
                };
                (entry, held)
            }
            Op::Splice { from, to, len } => (
                opcode::Splice::new(
                    types::Fd(from.as_raw_fd()),
                    -1,
                    types::Fd(to.as_raw_fd()),
                    -1,
                    len,
                )
                .flags(libc::SPLICE_F_NONBLOCK)
                .build(),
                Held {
                    tag,
                    _fds: [Some(from), Some(to)],
                    buf: None,
                },
            ),
        };
        // The buffer moved into `held` keeps its heap allocation (moving a
        // Vec does not move its contents), so the pointer in `entry` stays
        // valid while `held` is in the table.
        self.held.insert(id, held);
        self.push(&entry.user_data(id))?;
        Ok(OpId(id))
    }

    /// `IORING_OP_ASYNC_CANCEL` of `op`: it completes soon, with
    /// `ECANCELED` unless it had already finished.
    pub fn cancel(&mut self, op: OpId) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(op.0).build().user_data(INTERNAL);
        self.push(&entry)
    }

    /// Submits what is queued, waits for at least one completion, and
    /// appends every available completion to `out`.
    pub fn wait(&mut self, out: &mut Vec<Completion>) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        for cqe in self.ring.completion() {
            let id = cqe.user_data();
            if id == INTERNAL {
                continue;
            }
            let Some(mut held) = self.held.remove(&id) else {
                continue;
            };
            let res = cqe.result();
            let result = if res < 0 {
                Err(io::Error::from_raw_os_error(-res))
            } else {
                Ok(res as u32)
            };
            if let (Some(buf), Ok(n)) = (held.buf.as_mut(), &result) {
                let new_len = buf.len() + *n as usize;
                debug_assert!(new_len <= buf.capacity());
                // SAFETY: read(2) semantics of IORING_OP_READ
                // (io_uring_enter(2)): a non-negative res is the number of
                // bytes the kernel wrote at the pointer we gave, which was
                // the start of the spare capacity, and it never exceeds the
                // length we passed (the spare capacity). Those bytes are now
                // initialised.
                unsafe { buf.set_len(new_len) };
            }
            out.push(Completion {
                tag: held.tag,
                result,
                buf: held.buf,
            });
        }
        Ok(())
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next;
        self.next = self.next.wrapping_add(1) % INTERNAL;
        id
    }

    fn push(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: io_uring_enter(2) lets the kernel use the SQE's fds
            // and buffer until the CQE is posted. Every pointer and fd in an
            // entry built by `submit` belongs to a `Held` stored in
            // `self.held` under the entry's user_data, removed only when
            // that CQE is reaped in `wait` (or, on drop, after all CQEs were
            // reaped). Cancel entries carry no pointer or fd.
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            // The submission queue is full: hand it to the kernel, retry.
            self.ring.submit()?;
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.held.keys().copied().collect();
        for id in ids {
            if self.cancel(OpId(id)).is_err() {
                break;
            }
        }
        let mut sink = Vec::new();
        while !self.held.is_empty() {
            sink.clear();
            if self.wait(&mut sink).is_err() {
                // The kernel may still own these buffers: leak them.
                std::mem::forget(std::mem::take(&mut self.held));
                break;
            }
        }
    }
}
