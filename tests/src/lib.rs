//! Support for corral's end-to-end tests: root checks, feature skips,
//! per-test ids and bundles, and host-side probes (fds, children, mounts).
//! [`cli`] drives the `corral` and `runc` command lines side by side.
//!
//! Every test that starts a container calls [`require_root`] first: a run
//! that was asked to test containers must not pass by doing nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub mod cli;
pub mod seccomp_agent;

pub use corral_testbins::{bin_path, build_busybox_rootfs, shared_rootfs};

/// Panics with a clear message unless running as root.
pub fn require_root() {
    if !rustix::process::geteuid().is_root() {
        panic!(
            "this test starts containers and needs root: run the README's test command as root \
             (euid is {})",
            rustix::process::geteuid().as_raw()
        );
    }
}

/// Skips the calling test when `probe` fails, printing
/// `skipped: <feature>: <error>`; with `STRICT_FEATURES=1` it fails instead.
#[macro_export]
macro_rules! skip_unless {
    ($feature:expr, $probe:expr) => {
        if let Err(e) = $probe {
            if std::env::var_os("STRICT_FEATURES").is_some_and(|v| v == "1") {
                panic!(
                    "missing kernel feature {}: {} (STRICT_FEATURES=1)",
                    $feature, e
                );
            }
            eprintln!("skipped: {}: {}", $feature, e);
            return;
        }
    };
}

/// A container id unique to this process and call: `<name>-<pid>-<n>`.
pub fn unique_id(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes `$TMPDIR/corral-test-<unique>`.
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("corral-test-{}", unique_id(name)));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A library spec over the shared test rootfs running `args`, with pid,
/// mount, ipc and uts namespaces.
pub fn probe_spec(args: &[&str]) -> corral::Spec {
    use corral::oci_spec::runtime::LinuxNamespaceType as Ns;
    corral::Spec::builder()
        .rootfs(shared_rootfs())
        .readonly_root(true)
        .args(args.iter().copied())
        .namespaces(&[Ns::Pid, Ns::Mount, Ns::Ipc, Ns::Uts])
        .build()
        .expect("a builder spec is complete")
}

/// Adds a namespace of kind `typ` to `spec` (a new one, or the one at
/// `path`), replacing any of that kind.
pub fn add_namespace(
    spec: &mut corral::Spec,
    typ: corral::oci_spec::runtime::LinuxNamespaceType,
    path: Option<&str>,
) {
    let mut b = corral::oci_spec::runtime::LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p);
    }
    let linux = spec.oci_mut().linux_mut().as_mut().unwrap();
    let mut list = linux.namespaces().clone().unwrap_or_default();
    list.retain(|n| n.typ() != typ);
    list.push(b.build().unwrap());
    linux.set_namespaces(Some(list));
}

/// A current-thread tokio runtime for a test that drops it itself, to
/// look at what is left afterwards (dropping it waits for its blocking
/// tasks).
pub fn own_tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

/// A runtime with no state dir.
pub fn runtime() -> corral::Runtime {
    corral::Runtime::builder().build().expect("build a runtime")
}

/// Runs a container to completion with piped stdout; returns its status and
/// everything it printed.
pub async fn run_capture(
    rt: &corral::Runtime,
    spec: corral::Spec,
) -> anyhow::Result<(corral::ExitStatus, String)> {
    use tokio::io::AsyncReadExt;
    let mut c = rt
        .create(unique_id("cap"), spec)
        .stdout(corral::Stdio::piped())
        .await?;
    let mut out = c.take_stdout().expect("piped stdout");
    c.start().await?;
    let mut text = String::new();
    out.read_to_string(&mut text).await?;
    let status = c.wait().await?;
    c.delete().await?;
    Ok((status, text))
}

/// `probe info` in a container of `spec`'s shape, parsed.
pub async fn probe_info(
    rt: &corral::Runtime,
    spec: corral::Spec,
) -> anyhow::Result<serde_json::Value> {
    let (status, out) = run_capture(rt, spec).await?;
    anyhow::ensure!(status.success(), "probe exited with {status}: {out}");
    Ok(serde_json::from_str(&out)?)
}

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Serialises the tests of one test binary that count this process's
/// children: what they share is the process itself, whose child list every
/// concurrently running container test changes.
pub static CHILDREN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Children of this process (all threads), live or zombie.
pub fn child_count() -> usize {
    let mut n = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        n += children.split_whitespace().count();
    }
    n
}

/// Mount points on the host under `prefix`.
pub fn host_mounts_under(prefix: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let prefix = prefix.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(prefix.as_ref()))
        .map(str::to_owned)
        .collect()
}

/// `readlink /proc/self/ns/<name>` on the host.
pub fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .expect("read host namespace link")
        .to_string_lossy()
        .into_owned()
}

/// `create` fails with `InvalidSpec`/`Unsupported` naming `field`, and
/// leaves no child and no state dir.
pub async fn assert_refused(spec: corral::Spec, field: &str) {
    let tmp = TempDir::new("refused");
    let rt = corral::Runtime::builder()
        .state_dir(tmp.path().join("state"))
        .build()
        .unwrap();
    let before = child_count();
    let err = rt.create(unique_id("refused"), spec).await.unwrap_err();
    assert!(
        matches!(
            err,
            corral::Error::InvalidSpec { .. } | corral::Error::Unsupported { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(field), "{field} not in: {err}");
    // With the runtime: its resident init is a child while it lives.
    drop(rt);
    assert_eq!(child_count(), before, "a child was left");
    let left = std::fs::read_dir(tmp.path().join("state"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "a state dir was left");
}
