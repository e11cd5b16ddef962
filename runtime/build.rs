//! Builds `corral-init` as a static binary and hands its path to the crate,
//! which embeds it (`include_bytes!`) and at run time seals it into a memfd.
//! A library user therefore never installs a second binary by hand.
//!
//! `CORRAL_INIT_BINARY=/path/to/corral-init` skips the nested build and
//! embeds that file instead (for packagers and for offline builds).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CORRAL_INIT_BINARY");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = match env::var_os("CORRAL_INIT_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_init(&out_dir),
    };
    println!("cargo:rerun-if-changed={}", binary.display());
    println!("cargo:rustc-env=CORRAL_INIT_EMBED={}", binary.display());
    let bytes = std::fs::read(&binary).expect("read the corral-init binary");
    println!("cargo:rustc-env=CORRAL_INIT_ID={}", content_id(&bytes));
}

/// A name for this exact init binary (64-bit FNV-1a and the length), so a
/// file cache of it (`InitBinary::cached`) never serves another build's.
fn content_id(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}-{}", bytes.len())
}

fn build_init(out_dir: &Path) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("runtime/ lives in the workspace");
    for dir in ["runtime-init", "protocol"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    // The workspace manifest holds corral-init's profile (opt-level).
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // A target dir of its own: the outer cargo holds the lock on the
    // workspace's one while this script runs.
    let target_dir = out_dir.join("init-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "corral-init",
            "--target",
            &target,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // Exec'd, and copied into a memfd, once per container or per
        // runtime: small and fast to load beats debuggable here.
        .args(["--config", "profile.release.debug=false"])
        .args(["--config", "profile.release.strip=true"])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic=\"abort\""])
        // Static: no dynamic loader at each container start, and the same
        // binary works in any rootfs. Not position-independent: a static
        // PIE relocates itself at every start (about 1,900 relocations,
        // each page of them a copy-on-write fault). The init only ever
        // reads the runtime's messages and is gone at the workload's
        // `execve`, so a fixed address costs little.
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    // Our stdout is read by cargo as build-script directives.
    cmd.stdout(std::io::stderr());
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    let status = cmd.status().expect("run cargo to build corral-init");
    assert!(status.success(), "building corral-init failed: {status}");
    target_dir.join(&target).join("release").join("corral-init")
}
