//! Shared set-up for corral's benches: one OCI bundle over the static test
//! rootfs that corral, runc and crun all run, and the private mount
//! namespace in which crun 1.8 accepts this project's hybrid cgroup hosts.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Exits with a message unless root (benches start containers).
pub fn require_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("these benches start containers: run them as root");
        std::process::exit(2);
    }
}

/// Re-executes this bench inside a private mount namespace without the
/// cgroup2 `unified` mount of a hybrid host (via util-linux `unshare`), so
/// that crun 1.8 runs; every runtime in the bench then sees the same
/// mounts. The host's own mount table is untouched.
pub fn reexec_in_private_mounts() {
    const MARK: &str = "CORRAL_BENCH_PRIVATE_MOUNTS";
    if std::env::var_os(MARK).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "slave", "sh", "-c"])
        .arg("umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(MARK, "1")
        .status()
        .expect("run util-linux unshare");
    std::process::exit(status.code().unwrap_or(1));
}

/// A bundle in `dir` running `args`: `runc spec`'s config with no terminal,
/// no network namespace, no cgroup resources (corral's cgroups come
/// later), the rootfs from `corral_testbins::build_rootfs`.
pub fn make_bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let rootfs = dir.join("rootfs");
    corral_testbins::build_rootfs(&rootfs).expect("build the test rootfs");
    let status = Command::new("runc").arg("spec").current_dir(dir).status();
    assert!(
        status.is_ok_and(|s| s.success()) || dir.join("config.json").exists(),
        "`runc spec` failed: install Debian's runc (bash scripts/setup.sh)"
    );
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read config.json"))
            .expect("parse config.json");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(args);
    let linux = config["linux"].as_object_mut().expect("linux object");
    linux.remove("resources");
    linux.insert(
        "namespaces".into(),
        serde_json::json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]),
    );
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&config).expect("serialise"),
    )
    .expect("write config.json");
    dir.to_path_buf()
}

/// A unique container id: `<prefix>-<pid>-<n>`.
pub fn next_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates, starts, waits for (asserting a 0 exit) and deletes one
/// container of `spec`, named `<prefix>-...`: what the start-up and
/// throughput benches time.
pub async fn run_to_end(rt: &corral::Runtime, spec: corral::Spec, prefix: &str) {
    let mut c = rt.create(next_id(prefix), spec).await.expect("create");
    c.start().await.expect("start");
    assert!(c.wait().await.expect("wait").success());
    c.delete().await.expect("delete");
}

/// Sorts `v` and returns the sample at each quantile of `qs` (0 to 1):
/// index `(len - 1) * q`, rounded down. For the per-sample figures the
/// benches print beside criterion's estimates. `v` must not be empty.
pub fn quantiles<T: Ord + Copy, const N: usize>(v: &mut [T], qs: [f64; N]) -> [T; N] {
    v.sort_unstable();
    qs.map(|q| v[((v.len() - 1) as f64 * q) as usize])
}

/// The test rootfs the library benches run, made afresh by each bench
/// process (`$TMPDIR/corral-bench-rootfs-<uid>`, replaced at the next
/// run). Not the tests' shared rootfs: on this project's VMs a rootfs
/// directory that thousands of containers have used made every exit
/// slower (exit-to-wake 150 against 105 µs for a copy of the same files
/// made a minute before; dropping the dentry cache did not change it), so
/// a long-lived one would make runs incomparable.
pub fn bench_rootfs() -> &'static Path {
    static ROOTFS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOTFS.get_or_init(|| {
        let uid = rustix::process::geteuid().as_raw();
        let dir = std::env::temp_dir().join(format!("corral-bench-rootfs-{uid}"));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove the last run's rootfs {dir:?}: {e}"),
        }
        corral_testbins::build_rootfs(&dir).expect("build the bench rootfs");
        dir
    })
}

/// The smallest useful library spec: the static test rootfs, read-only,
/// pid, mount, uts and ipc namespaces, only `/proc` mounted, no masked
/// paths — what a test farm that wants raw speed would run.
pub fn minimal_spec(args: &[&str]) -> corral::Spec {
    use corral::oci_spec::runtime::{LinuxNamespaceType as Ns, MountBuilder};
    let proc_mount = MountBuilder::default()
        .destination("/proc")
        .typ("proc")
        .source("proc")
        .build()
        .expect("a proc mount");
    corral::Spec::builder()
        .rootfs(bench_rootfs())
        .readonly_root(true)
        .args(args.iter().copied())
        .namespaces(&[Ns::Pid, Ns::Mount, Ns::Ipc, Ns::Uts])
        .with_oci(|oci| {
            oci.set_mounts(Some(vec![proc_mount]));
            if let Some(linux) = oci.linux_mut() {
                linux.set_masked_paths(None);
                linux.set_readonly_paths(None);
            }
        })
        .build()
        .expect("a complete spec")
}

/// The tokio runtime every bench uses: two workers, as many as cores.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the bench's tokio runtime")
}
