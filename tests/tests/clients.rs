//! Real clients as the judges: Debian's podman (through conmon) and
//! containerd (through its runc shim) drive corral with the scenarios in
//! `tests/clients/*.sh`, and drive runc with the same scripts as the
//! control, so that a failure can be told apart from a test bug.
//!
//! Each scenario prints one `ok`/`not ok` line per check and exits
//! non-zero if any check failed; the whole transcript is shown on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use corral_tests::cli::{corral_bin, runc_bin};
use corral_tests::require_root;

fn scenario(script: &str, runtime: &Path) {
    require_root();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(script);
    let out = Command::new("bash")
        .arg(&path)
        .arg(runtime)
        .output()
        .unwrap_or_else(|e| panic!("run {path:?}: {e}"));
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{script} with {runtime:?} failed ({}):\n{transcript}",
        out.status
    );
    assert!(
        transcript.contains("ok - ") && !transcript.contains("not ok"),
        "{script} with {runtime:?}:\n{transcript}"
    );
}

#[test]
fn podman_runs_corral_containers() {
    scenario("podman.sh", &corral_bin());
}

#[test]
fn podman_runs_runc_containers_as_the_control() {
    scenario("podman.sh", &runc_bin());
}

#[test]
fn containerd_runs_corral_containers() {
    scenario("containerd.sh", &corral_bin());
}

#[test]
fn containerd_runs_runc_containers_as_the_control() {
    scenario("containerd.sh", &runc_bin());
}
