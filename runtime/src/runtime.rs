//! [`Runtime`]: what is prepared once and shared by every container (the
//! sealed init binary, the host's cgroup layout, the state dir), and the
//! [`Create`] builder that starts a container.

use std::future::{Future, IntoFuture};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use corral_protocol::StartVia;

use crate::Spec;
use crate::cgroup_layout::Layout;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::init_binary::InitBinary;
use crate::state::StateDir;
use crate::stdio::Stdio;
use crate::uring::{Backend, Engine};

/// A container runtime: cheap to clone, shareable across tasks.
#[derive(Clone, Debug)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Sealed on first use, so commands that start nothing never pay for it.
    init: std::sync::OnceLock<InitBinary>,
    init_source: InitSource,
    layout: Layout,
    cgroups: crate::cgroups::Setup,
    /// v1 cgroup directories made ahead (`cgroups::spare`).
    cgroup_spares: Arc<crate::cgroups::spare::Spares>,
    /// The resident init that clones containers' inits, when enabled.
    resident: Option<crate::resident::Resident>,
    /// Containers' mount namespaces held until their exits are reaped.
    mount_ns_holds: Arc<crate::mount_ns_hold::Holds>,
    state_dir: Option<StateDir>,
    original_nofile: Option<(u64, u64)>,
    /// The stdio copy engine: set up at the first container that needs
    /// one (at `build` when io_uring is forced).
    stdio: std::sync::OnceLock<Engine>,
    stdio_backend: Backend,
}

impl Runtime {
    /// A builder with the defaults: the embedded init, no state dir.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Starts creating container `id` from `spec`; configure stdio on the
    /// returned [`Create`], then `.await` it.
    pub fn create(&self, id: impl Into<String>, spec: Spec) -> Create {
        Create {
            runtime: self.clone(),
            id: id.into(),
            spec,
            options: CreateOptions::default(),
        }
    }

    /// `RLIMIT_NOFILE` as this process had it before the runtime raised
    /// it: a container whose spec does not set the limit gets this, as if
    /// the runtime had never touched it.
    pub(crate) fn inherited_nofile(&self) -> Option<(u64, u64)> {
        self.inner.original_nofile
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    pub(crate) fn cgroups(&self) -> &crate::cgroups::Setup {
        &self.inner.cgroups
    }

    pub(crate) fn cgroup_spares(&self) -> &Arc<crate::cgroups::spare::Spares> {
        &self.inner.cgroup_spares
    }

    pub(crate) fn mount_ns_holds(&self) -> &Arc<crate::mount_ns_hold::Holds> {
        &self.inner.mount_ns_holds
    }

    pub(crate) fn resident(&self) -> Option<&crate::resident::Resident> {
        self.inner.resident.as_ref()
    }

    pub(crate) fn init_binary(&self) -> Result<&InitBinary> {
        if let Some(init) = self.inner.init.get() {
            return Ok(init);
        }
        let init = match &self.inner.init_source {
            InitSource::Embedded => InitBinary::embedded()?,
            InitSource::Path(path, seal) => InitBinary::from_path(path, *seal)?,
            InitSource::Cache(dir) => InitBinary::cached(dir)?,
        };
        // A concurrent first use may have won; either copy is as good.
        Ok(self.inner.init.get_or_init(|| init))
    }

    pub(crate) fn stdio_engine(&self) -> &Engine {
        self.inner.stdio.get_or_init(|| {
            Engine::choose(self.inner.stdio_backend)
                .expect("a forced io_uring engine is set up in build; the others cannot fail")
        })
    }

    pub(crate) fn state_dir_opt(&self) -> Option<&StateDir> {
        self.inner.state_dir.as_ref()
    }

    pub(crate) fn state_dir(&self) -> Result<&StateDir> {
        self.state_dir_opt().ok_or_else(|| Error::StateDir {
            path: PathBuf::new(),
            source: std::io::Error::other(
                "this runtime has no state dir (RuntimeBuilder::state_dir)",
            ),
        })
    }
}

/// Where the runtime's `corral-init` comes from.
#[derive(Debug, Default)]
enum InitSource {
    /// The embedded binary, sealed into a memfd.
    #[default]
    Embedded,
    /// A file, sealed into a memfd when the flag says so.
    Path(PathBuf, bool),
    /// The embedded binary, cached as a file in this directory.
    Cache(PathBuf),
}

/// Builds a [`Runtime`].
#[derive(Debug)]
pub struct RuntimeBuilder {
    state_dir: Option<PathBuf>,
    init_source: InitSource,
    cgroup_v2_root: Option<PathBuf>,
    stdio_backend: Backend,
    cgroup_spares: usize,
    resident_init: bool,
    mount_ns_holds: usize,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            state_dir: None,
            init_source: InitSource::default(),
            cgroup_v2_root: None,
            stdio_backend: Backend::default(),
            cgroup_spares: 2,
            resident_init: true,
            mount_ns_holds: 1024,
        }
    }
}

impl RuntimeBuilder {
    /// Keeps each container's state under `dir/<id>/` so that other
    /// processes (the command line) can find it. Without it, containers
    /// live only as in-memory handles.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Execs this `corral-init` instead of the embedded one. With `seal`,
    /// it is copied into a sealed memfd first (recommended: a container
    /// can then never reach the file).
    pub fn init_binary(mut self, path: impl Into<PathBuf>, seal: bool) -> Self {
        self.init_source = InitSource::Path(path.into(), seal);
        self
    }

    /// Keeps the embedded `corral-init` as a file in `dir` (made `0700`,
    /// written once per build of the init) and execs it through a private
    /// read-only mount of that file, instead of copying it into a sealed
    /// memfd. The copy costs about 0.8 ms per `Runtime`: worth saving in a
    /// process that builds a `Runtime` for one container, as the command
    /// line does. Without the privilege to make the mount (a non-root
    /// caller), or if `dir` or the file is writable by anyone but its
    /// owner, the runtime falls back to the sealed copy.
    pub fn init_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.init_source = InitSource::Cache(dir.into());
        self
    }

    /// Puts containers in the cgroup2 hierarchy at `dir` instead of the
    /// detected cgroups: every `linux.cgroupsPath` (absolute or relative)
    /// and the default `corral/<id>` is taken under `dir`. For hosts with
    /// more than one hierarchy (a hybrid host's `unified` mount).
    pub fn cgroup_v2_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cgroup_v2_root = Some(dir.into());
        self
    }

    /// How many sets of cgroup directories a v1 host's runtime keeps made
    /// ahead of its creates (default 2; 0 for none). A create renames a
    /// set into place instead of making a directory per hierarchy, and a
    /// blocking task makes the next set: about 0.2 ms off each create's
    /// latency, for the same work done earlier. Kept under the parents the
    /// last create used, as `.spare-<pid>-<n>`, and removed when the last
    /// clone of the runtime is dropped. A process that starts one
    /// container (the command line) should say 0. Nothing is kept on v2.
    pub fn cgroup_spares(mut self, sets: usize) -> Self {
        self.cgroup_spares = sets;
        self
    }

    /// Whether containers' inits are cloned by a resident `corral-init`
    /// (default) rather than each exec'd afresh. The resident init is
    /// exec'd at the first create, from a thread of the runtime's own that
    /// lives as long as the runtime, and saves each container the exec of
    /// the init and its libc start-up (about 0.35 ms on this project's
    /// machines). Containers that join namespaces, or have a time
    /// namespace, are always cloned directly, as are all when this is off.
    /// A process that starts one container (the command line) should say
    /// `false`.
    pub fn resident_init(mut self, enabled: bool) -> Self {
        self.resident_init = enabled;
        self
    }

    /// How many containers' mount namespaces the runtime may hold at once
    /// (default 1,024; 0 for none). A held namespace outlives the
    /// container's last process until its exit is reaped, and is then torn
    /// down on a blocking task: the exit is reported without waiting for
    /// the teardown (an RCU grace period, about 55 µs on this project's
    /// machines). Each hold is one more fd while the container lives, so
    /// the budget keeps a runtime with 10,000 live containers near one fd
    /// per container. A process that starts one container (the command
    /// line) should say 0: its own exit would pay the teardown instead.
    pub fn mount_ns_holds(mut self, holds: usize) -> Self {
        self.mount_ns_holds = holds;
        self
    }

    /// How container output is copied: each kind on its faster path where
    /// io_uring is available (the default, [`Backend::Auto`]: piped output
    /// on io_uring, files with `splice(2)` on tokio), everything on
    /// io_uring or nothing ([`Backend::IoUring`]: `build` fails without
    /// it), or everything on tokio ([`Backend::Fallback`]).
    pub fn stdio_backend(mut self, backend: Backend) -> Self {
        self.stdio_backend = backend;
        self
    }

    /// Prepares the runtime: reads the host's cgroup layout. The init
    /// binary is sealed into its memfd at the first `create`.
    pub fn build(self) -> Result<Runtime> {
        let original_nofile = raise_nofile_limit();
        let layout = Layout::detect().map_err(|e| Error::sys("read the cgroup layout", e))?;
        let cgroups = match &self.cgroup_v2_root {
            Some(dir) => crate::cgroups::Setup::v2_at(dir),
            None => crate::cgroups::Setup::detect(&layout),
        };
        let state_dir = self.state_dir.map(StateDir::new);
        let stdio = std::sync::OnceLock::new();
        if self.stdio_backend == Backend::IoUring {
            let engine = Engine::choose(Backend::IoUring)
                .map_err(|e| Error::sys("io_uring_setup for stdio", e))?;
            let _ = stdio.set(engine);
        }
        let inner = Inner {
            stdio,
            stdio_backend: self.stdio_backend,
            init: std::sync::OnceLock::new(),
            init_source: self.init_source,
            original_nofile,
            layout,
            cgroups,
            cgroup_spares: crate::cgroups::spare::Spares::new(self.cgroup_spares),
            resident: self.resident_init.then(crate::resident::Resident::default),
            mount_ns_holds: crate::mount_ns_hold::Holds::new(self.mount_ns_holds),
            state_dir,
        };
        Ok(Runtime {
            inner: Arc::new(inner),
        })
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit: each live
/// container holds an fd (its pidfd) in the runtime, and the usual soft
/// limit of 1024 would cap a runtime far below what the host allows.
/// Returns the limit as it was, which containers get back (see
/// `Runtime::inherited_nofile`).
fn raise_nofile_limit() -> Option<(u64, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current?, limit.maximum?);
    if soft < hard {
        let raised = rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "raise RLIMIT_NOFILE to its hard limit");
            return None;
        }
        return Some((soft, hard));
    }
    None
}

/// How to create one container. See [`Runtime::create`].
#[derive(Debug)]
pub(crate) struct CreateOptions {
    pub stdio: [Stdio; 3],
    pub detach: bool,
    pub start_via: StartVia,
    pub no_pivot: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            stdio: [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
            detach: false,
            start_via: StartVia::Socket,
            no_pivot: false,
        }
    }
}

/// A container being created; `.await` it for a [`Container`] in the
/// created state (its init waits, set up, for [`Container::start`]).
///
/// # Cancel safety
/// Dropping the future before it completes kills and reaps the
/// half-created child and removes its state dir.
#[must_use = "a Create does nothing until awaited"]
#[derive(Debug)]
pub struct Create {
    runtime: Runtime,
    id: String,
    spec: Spec,
    options: CreateOptions,
}

impl Create {
    /// The container's stdin (fd 0).
    pub fn stdin(mut self, stdio: Stdio) -> Self {
        self.options.stdio[0] = stdio;
        self
    }

    /// The container's stdout (fd 1).
    pub fn stdout(mut self, stdio: Stdio) -> Self {
        self.options.stdio[1] = stdio;
        self
    }

    /// The container's stderr (fd 2).
    pub fn stderr(mut self, stdio: Stdio) -> Self {
        self.options.stdio[2] = stdio;
        self
    }

    /// Whether the container outlives this process: no parent-death
    /// signal. Use with [`Container::detach`].
    pub fn detached(mut self, detached: bool) -> Self {
        self.options.detach = detached;
        self
    }

    /// `chroot` instead of `pivot_root` (for a rootfs on an initramfs,
    /// which cannot be pivoted).
    pub fn no_pivot(mut self, no_pivot: bool) -> Self {
        self.options.no_pivot = no_pivot;
        self
    }

    /// The init waits on a FIFO in the state dir instead of the socket, so
    /// that another process can start it (the command line's `create`).
    /// Needs a state dir.
    pub fn start_via_fifo(mut self) -> Self {
        self.options.start_via = StartVia::Fifo;
        self
    }
}

impl IntoFuture for Create {
    type Output = Result<Container>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Container>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(crate::create::create(
            self.runtime,
            self.id,
            self.spec,
            self.options,
        ))
    }
}
