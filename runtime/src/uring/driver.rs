//! The ring thread: one loop that waits on the ring, turns completions into
//! the next operation of each copy, and takes commands after each eventfd
//! wake-up.
//!
//! A file copy is `POLL_ADD(POLLIN)`, then one `SPLICE` (non-blocking),
//! then poll again, or splice again at once when the splice moved a full
//! chunk: splice always runs on an io-wq worker, and waiting for
//! readiness first keeps an idle pipe from parking one (and spares the
//! worker round trip that would only return `EAGAIN`). A piped
//! output is `READ` into one of its few buffers (pipes support non-blocking
//! reads, so the kernel's internal poll waits without a worker); a full
//! set of buffers with the reader stops the reads, the pipe fills, and the
//! container blocks in `write(2)`: memory stays bounded.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, mpsc};

use tokio::sync::{mpsc as tmpsc, oneshot};
use tracing::{error, trace};

use super::{Command, PIPED_BUF, PIPED_BUFS};
use crate::sys::uring::{Completion, Op, OpId, Ring};

/// The tag of the eventfd poll.
const WAKE: u64 = u64::MAX - 1;
/// Bytes asked of one splice; the pipe's content caps it.
const SPLICE_LEN: u32 = 1 << 20;

struct FileCopy {
    pipe: Arc<OwnedFd>,
    file: Arc<OwnedFd>,
    copied: u64,
    /// Whether the operation in flight is the readiness poll.
    polling: bool,
    done: Option<oneshot::Sender<io::Result<u64>>>,
}

struct PipeRead {
    pipe: Arc<OwnedFd>,
    free: Vec<Vec<u8>>,
    chunks: tmpsc::UnboundedSender<io::Result<Vec<u8>>>,
    in_flight: Option<OpId>,
    closed: bool,
}

enum Job {
    File(FileCopy),
    Pipe(PipeRead),
}

struct Driver {
    ring: Ring,
    jobs: HashMap<u64, Job>,
    next_file_job: u64,
}

/// The thread body: runs until every handle is gone and every job ended.
pub(super) fn run(ring: Ring, wake: Arc<OwnedFd>, commands: mpsc::Receiver<Command>) {
    let mut d = Driver {
        ring,
        jobs: HashMap::new(),
        // File jobs are numbered from the top half, piped ones (numbered
        // by the handle) from 0: they never meet.
        next_file_job: 1 << 62,
    };
    let mut disconnected = false;
    if let Err(e) = d.ring.submit(WAKE, Op::PollIn(wake.clone())) {
        error!(error = %e, "io_uring: poll the wake-up eventfd");
        return;
    }
    let mut completions = Vec::new();
    loop {
        if disconnected && d.jobs.is_empty() {
            break;
        }
        completions.clear();
        if let Err(e) = d.ring.wait(&mut completions) {
            error!(error = %e, "io_uring_enter: the stdio ring stops");
            d.fail_all(&e);
            break;
        }
        for c in completions.drain(..) {
            if c.tag == WAKE {
                drain_eventfd(&wake);
                disconnected |= d.take_commands(&commands);
                if let Err(e) = d.ring.submit(WAKE, Op::PollIn(wake.clone())) {
                    error!(error = %e, "io_uring: poll the wake-up eventfd");
                    d.fail_all(&e);
                    return;
                }
            } else {
                d.complete(c);
            }
        }
    }
}

fn drain_eventfd(eventfd: &OwnedFd) {
    let mut counter = [0u8; 8];
    let _ = rustix::io::read(eventfd, &mut counter);
}

impl Driver {
    /// Applies every queued command; true once all senders are gone.
    fn take_commands(&mut self, commands: &mpsc::Receiver<Command>) -> bool {
        loop {
            match commands.try_recv() {
                Ok(command) => self.apply(command),
                Err(mpsc::TryRecvError::Empty) => return false,
                Err(mpsc::TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::CopyToFile { pipe, file, done } => {
                let job = self.next_file_job;
                self.next_file_job += 1;
                let mut copy = FileCopy {
                    pipe: Arc::new(pipe),
                    file: Arc::new(file),
                    copied: 0,
                    polling: true,
                    done: Some(done),
                };
                let poll = copy.poll();
                self.jobs.insert(job, Job::File(copy));
                self.submit_or_fail(job, poll);
            }
            Command::ReadPipe { job, pipe, chunks } => {
                let read = PipeRead {
                    pipe: Arc::new(pipe),
                    free: (0..PIPED_BUFS)
                        .map(|_| Vec::with_capacity(PIPED_BUF))
                        .collect(),
                    chunks,
                    in_flight: None,
                    closed: false,
                };
                self.jobs.insert(job, Job::Pipe(read));
                self.read_next(job);
            }
            Command::Refill { job, mut buf } => {
                if let Some(Job::Pipe(read)) = self.jobs.get_mut(&job) {
                    buf.clear();
                    read.free.push(buf);
                    self.read_next(job);
                }
            }
            Command::Close { job } => self.close_pipe(job),
        }
    }

    fn complete(&mut self, c: Completion) {
        match self.jobs.get_mut(&c.tag) {
            Some(Job::File(_)) => self.complete_file(c),
            Some(Job::Pipe(_)) => self.complete_pipe(c),
            None => {}
        }
    }

    fn complete_file(&mut self, c: Completion) {
        let Some(Job::File(copy)) = self.jobs.get_mut(&c.tag) else {
            return;
        };
        // A poll completion carries the ready events (> 0); a splice one
        // carries bytes moved. Both map onto "splice next" unless EOF.
        let is_poll = copy.polling;
        let next = match c.result {
            Ok(_) if is_poll => Some(copy.splice()),
            Ok(0) => None,
            Ok(n) => {
                copy.copied += u64::from(n);
                trace!(bytes = n, "splice");
                // A full chunk means the pipe was full (it holds
                // SPLICE_LEN with the 1 MiB pipe of a file copy) and the
                // writer is likely blocked on it: splice again at once. A
                // short one means the pipe ran dry, so poll rather than
                // splice: a poll on a ready pipe completes inline, while a
                // splice on an empty one costs an io-wq round trip just to
                // learn EAGAIN. Measured in docs/performance.md (stdio).
                if n == SPLICE_LEN {
                    Some(copy.splice())
                } else {
                    Some(copy.poll())
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(copy.poll()),
            Err(e) => {
                self.finish_file(c.tag, Err(e));
                return;
            }
        };
        match next {
            Some(op) => self.submit_or_fail(c.tag, op),
            None => {
                let copied = copy.copied;
                self.finish_file(c.tag, Ok(copied));
            }
        }
    }

    fn finish_file(&mut self, job: u64, result: io::Result<u64>) {
        if let Some(Job::File(mut copy)) = self.jobs.remove(&job) {
            let done = copy.done.take();
            // Close the pipe and the file before reporting: whoever awaits
            // the copy may count fds or reopen the file.
            drop(copy);
            if let Some(done) = done {
                let _ = done.send(result);
            }
        }
    }

    fn complete_pipe(&mut self, c: Completion) {
        let Some(Job::Pipe(read)) = self.jobs.get_mut(&c.tag) else {
            return;
        };
        read.in_flight = None;
        if read.closed {
            self.jobs.remove(&c.tag);
            return;
        }
        let buf = c.buf.expect("a read completion returns its buffer");
        match c.result {
            Ok(0) => {
                // EOF: dropping the sender ends the reader's stream after
                // the chunks already queued.
                self.jobs.remove(&c.tag);
            }
            Ok(n) => {
                trace!(bytes = n, "read");
                if read.chunks.send(Ok(buf)).is_err() {
                    self.jobs.remove(&c.tag);
                    return;
                }
                self.read_next(c.tag);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                read.free.push(buf);
                self.read_next(c.tag);
            }
            Err(e) => {
                let _ = read.chunks.send(Err(e));
                self.jobs.remove(&c.tag);
            }
        }
    }

    /// Starts a read of `job` when it has a free buffer and none in flight.
    fn read_next(&mut self, job: u64) {
        let Some(Job::Pipe(read)) = self.jobs.get_mut(&job) else {
            return;
        };
        if read.in_flight.is_some() || read.closed {
            return;
        }
        let Some(buf) = read.free.pop() else {
            // Backpressure: every buffer is with the reader.
            return;
        };
        match self.ring.submit(job, Op::Read(read.pipe.clone(), buf)) {
            Ok(op) => read.in_flight = Some(op),
            Err(e) => {
                let _ = read.chunks.send(Err(e));
                self.jobs.remove(&job);
            }
        }
    }

    fn close_pipe(&mut self, job: u64) {
        let Some(Job::Pipe(read)) = self.jobs.get_mut(&job) else {
            return;
        };
        read.closed = true;
        match read.in_flight {
            // The job goes when the cancelled read completes: its buffer
            // is the kernel's until then.
            Some(op) => {
                if self.ring.cancel(op).is_err() {
                    error!(job, "io_uring: cancel a read; it ends at the pipe's EOF");
                }
            }
            None => {
                self.jobs.remove(&job);
            }
        }
    }

    fn submit_or_fail(&mut self, job: u64, op: Op) {
        let submitted = self.ring.submit(job, op);
        if let (Err(e), Some(Job::File(copy))) = (submitted, self.jobs.get_mut(&job)) {
            copy.done.take().map(|done| done.send(Err(e)));
            self.jobs.remove(&job);
        }
    }

    fn fail_all(&mut self, e: &io::Error) {
        for (_, job) in self.jobs.drain() {
            let err = || io::Error::new(e.kind(), e.to_string());
            match job {
                Job::File(mut copy) => {
                    copy.done.take().map(|done| done.send(Err(err())));
                }
                Job::Pipe(read) => {
                    let _ = read.chunks.send(Err(err()));
                }
            }
        }
    }
}

impl FileCopy {
    fn poll(&mut self) -> Op {
        self.polling = true;
        Op::PollIn(self.pipe.clone())
    }

    fn splice(&mut self) -> Op {
        self.polling = false;
        Op::Splice {
            from: self.pipe.clone(),
            to: self.file.clone(),
            len: SPLICE_LEN,
        }
    }
}
