//! [`Pool`]: containers created ahead of time and parked just before
//! `execve`, handed out to jobs by [`Pool::start`]. A test farm then pays
//! only the start (one message and the workload's exec) on its critical
//! path; the create (clone, namespaces, mounts, pivot) happens in the
//! background, in one refill task per pool.
//!
//! When the refill runs matters on a small machine: a refill woken as
//! `start` returns preempted the caller's thread before it could use the
//! container it had just started (on 2 cores the per-start median went
//! from 0.25 ms to 0.59 ms; see docs/performance.md). So a start does not
//! wake the refill itself. The handed-out container does, when the caller
//! first waits on it (the caller is then blocked anyway) or drops or
//! deletes it; so does a start that finds the pool empty (it creates one
//! on the spot), and [`Pool::filled`]. A caller that holds containers
//! without ever waiting drains the pool down to that empty start, which
//! then refills it in full.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tracing::{Instrument, warn};

use crate::error::Result;
use crate::runtime::{Create, Runtime};
use crate::{Container, Spec};

type Configure = dyn Fn(Create) -> Create + Send + Sync;

/// A warm pool of created containers of one spec.
///
/// # Drop
/// Dropping the pool stops its refill task; the parked containers are
/// dropped, which kills and reaps them.
pub struct Pool {
    shared: Arc<Shared>,
    refill: tokio::task::JoinHandle<()>,
}

struct Shared {
    runtime: Runtime,
    spec: Spec,
    configure: Box<Configure>,
    size: usize,
    prefix: String,
    next: AtomicU64,
    ready: Mutex<VecDeque<Container>>,
    /// A container should be made: a handed-out one is being waited on or
    /// was let go, the pool ran dry, or someone waits for it to be full.
    wanted: Arc<Notify>,
    /// A container was parked.
    parked: Notify,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("prefix", &self.shared.prefix)
            .field("size", &self.shared.size)
            .finish()
    }
}

impl Runtime {
    /// A pool keeping `size` containers of `spec` created and waiting.
    /// Must be called inside a tokio runtime (it spawns the refill task).
    pub fn pool(&self, spec: Spec, size: usize) -> Pool {
        self.pool_with(spec, size, |create| create)
    }

    /// Like [`Runtime::pool`], with `configure` applied to every create
    /// (stdio, for example: `|c| c.stdout(Stdio::piped())`).
    pub fn pool_with(
        &self,
        spec: Spec,
        size: usize,
        configure: impl Fn(Create) -> Create + Send + Sync + 'static,
    ) -> Pool {
        static POOLS: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "pool-{}-{}",
            std::process::id(),
            POOLS.fetch_add(1, Ordering::Relaxed)
        );
        let shared = Arc::new(Shared {
            runtime: self.clone(),
            spec,
            configure: Box::new(configure),
            size,
            prefix,
            next: AtomicU64::new(0),
            ready: Mutex::new(VecDeque::with_capacity(size)),
            wanted: Arc::new(Notify::new()),
            parked: Notify::new(),
        });
        let span = tracing::debug_span!("pool", prefix = %shared.prefix);
        let refill = tokio::spawn(refill(shared.clone()).instrument(span));
        Pool { shared, refill }
    }
}

impl Pool {
    /// Takes a parked container (or, when none is parked, creates one on
    /// the spot) and starts it with `args` and, when given, `env` in
    /// place of the spec's. Returns it running. Its slot is refilled once
    /// the returned container is waited on, deleted or dropped (see the
    /// module doc).
    ///
    /// # Cancel safety
    /// A container taken but not yet started when the future is dropped
    /// is dropped too (killed and reaped); the pool refills.
    pub async fn start<I, S>(&self, args: I, env: Option<Vec<String>>) -> Result<Container>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        // The refill is woken by the container later (see the module doc),
        // not here: a create beside the start, or right after it, competes
        // with the job's start and the caller for the same cores.
        let mut container = match self.take() {
            Some(c) => c,
            None => {
                self.shared.wanted.notify_one();
                self.shared.create().await?
            }
        };
        container.refill = Some(self.shared.wanted.clone());
        container.start_with(args, env).await?;
        Ok(container)
    }

    /// How many containers are parked now.
    pub fn parked(&self) -> usize {
        self.shared
            .ready
            .lock()
            .expect("pool lock is never poisoned")
            .len()
    }

    /// Waits until the pool is full.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn filled(&self) {
        self.shared.wanted.notify_one();
        loop {
            let parked = self.shared.parked.notified();
            if self.parked() >= self.shared.size {
                return;
            }
            parked.await;
        }
    }

    fn take(&self) -> Option<Container> {
        self.shared
            .ready
            .lock()
            .expect("pool lock is never poisoned")
            .pop_front()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.refill.abort();
    }
}

impl Shared {
    async fn create(&self) -> Result<Container> {
        let id = format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        (self.configure)(self.runtime.create(id, self.spec.clone())).await
    }
}

/// Keeps the pool full: creates while short, then sleeps until woken
/// (see `Shared::wanted`). A failed create is logged and retried at the
/// next wake, so a broken spec does not spin.
async fn refill(shared: Arc<Shared>) {
    loop {
        let wanted = shared.wanted.notified();
        let short = shared.size.saturating_sub(
            shared
                .ready
                .lock()
                .expect("pool lock is never poisoned")
                .len(),
        );
        for _ in 0..short {
            match shared.create().await {
                Ok(c) => {
                    shared
                        .ready
                        .lock()
                        .expect("pool lock is never poisoned")
                        .push_back(c);
                    shared.parked.notify_waiters();
                }
                Err(e) => {
                    warn!(error = %e, "refill the warm pool");
                    break;
                }
            }
        }
        wanted.await;
    }
}
