//! [`Pool`]: containers created ahead of time and parked just before
//! `execve`, handed out to jobs by [`Pool::start`]. A test farm then pays
//! only the start (one message and the workload's exec) on its critical
//! path; the create (clone, namespaces, mounts, pivot) happens in the
//! background, in one refill task per pool.

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
    /// A container was taken (or a refill failed and should be retried).
    wanted: Notify,
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
            wanted: Notify::new(),
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
    /// place of the spec's. Returns it running.
    ///
    /// # Cancel safety
    /// A container taken but not yet started when the future is dropped
    /// is dropped too (killed and reaped); the pool refills.
    pub async fn start<I, S>(&self, args: I, env: Option<Vec<String>>) -> Result<Container>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        // Refill once this returns (or is dropped), not at the take: a
        // create running beside the start would compete with it for the
        // same cores, on the job's critical path.
        let _refill = RefillOnDrop(&self.shared.wanted);
        let mut container = match self.take() {
            Some(c) => c,
            None => self.shared.create().await?,
        };
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

/// Wakes the refill task when dropped.
struct RefillOnDrop<'a>(&'a Notify);

impl Drop for RefillOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
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

/// Keeps the pool full: creates while short, then sleeps until a
/// container is taken. A failed create is logged and retried at the next
/// take, so a broken spec does not spin.
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
