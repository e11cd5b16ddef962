//! Compiles each `bins/<name>.rs` into a static binary `$OUT_DIR/<name>`.
//!
//! The sources use only std and are compiled by plain rustc, not cargo, so
//! they get no dependencies and none of the workspace lints. Static glibc
//! (`+crt-static`) lets them run in a rootfs that has no libc at all. A
//! `#![no_std]` source (`true`, `stamp-exit`) links neither std nor libc
//! and brings its own entry point. Subdirectories of `bins/` hold modules
//! that binaries include with `#[path]` (`shared/raw.rs`: raw system
//! calls); they are not binaries themselves.
//!
//! Also writes, for `src/lib.rs`:
//! - `$OUT_DIR/bin_names.rs` and `$OUT_DIR/bin_paths.rs`: parallel array
//!   expressions of the binary names and their absolute paths;
//! - `CORRAL_TESTBINS_BUILD_ID`: a hash of the binaries' contents, which names
//!   the shared rootfs so that a rebuild never reuses a stale one.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").expect("cargo sets TARGET");
    assert!(
        target.contains("-linux-"),
        "corral-testbins builds Linux binaries only, not for {target}"
    );

    println!("cargo:rerun-if-changed=build.rs");
    // The directory itself, so that adding or removing a binary reruns this.
    println!("cargo:rerun-if-changed=bins");

    let names = bin_names(&manifest_dir.join("bins"));
    let mut build_id = Fnv::new();
    for name in &names {
        let src = manifest_dir.join("bins").join(format!("{name}.rs"));
        println!("cargo:rerun-if-changed={}", src.display());
        let dest = out_dir.join(name);
        compile(&target, name, &src, &dest);
        build_id.feed(name.as_bytes());
        build_id.feed(&fs::read(&dest).unwrap_or_else(|e| panic!("read {dest:?}: {e}")));
    }

    let paths: Vec<String> = names.iter().map(|n| path_str(&out_dir.join(n))).collect();
    write_array(&out_dir.join("bin_names.rs"), &names);
    write_array(&out_dir.join("bin_paths.rs"), &paths);
    println!(
        "cargo:rustc-env=CORRAL_TESTBINS_BUILD_ID={:016x}",
        build_id.0
    );
}

/// Sorted stems of `bins/*.rs`.
fn bin_names(bins_dir: &Path) -> Vec<String> {
    let entries = fs::read_dir(bins_dir).unwrap_or_else(|e| panic!("read_dir {bins_dir:?}: {e}"));
    let mut names: Vec<String> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("read_dir {bins_dir:?}: {e}"))
                .path()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path_str(Path::new(path.file_stem().expect("a *.rs file has a stem"))))
        .collect();
    names.sort();
    for name in &names {
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        assert!(
            valid,
            "bins/{name}.rs: binary names may use only [A-Za-z0-9_-]"
        );
    }
    names
}

fn compile(target: &str, name: &str, src: &Path, dest: &Path) {
    let rustc = env::var_os("RUSTC").expect("cargo sets RUSTC");
    // A `#![no_std]` source brings its own `_start` and links no libc.
    let text = fs::read_to_string(src).unwrap_or_else(|e| panic!("read {src:?}: {e}"));
    let no_libc: &[&str] = if text.contains("#![no_std]") {
        &[
            "-C",
            "relocation-model=static",
            "-C",
            "link-arg=-nostartfiles",
            "-C",
            "link-arg=-nostdlib",
        ]
    } else {
        &[]
    };
    // `true` and `false` are keywords and `-` is not allowed in crate names.
    let crate_name = format!("testbin_{}", name.replace('-', "_"));
    let output = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            &crate_name,
        ])
        .args(["--target", target])
        .args(["-C", "opt-level=2", "-C", "panic=abort"])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .args(no_libc)
        .arg("-o")
        .arg(dest)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("run {rustc:?}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compile {src:?} ({}):\n{stderr}",
        output.status
    );
    // Cargo hides build script output unless the build fails; surface
    // warnings so that the bins stay warning-free.
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning={name}: {line}");
    }
}

fn path_str(path: &Path) -> String {
    path.to_str()
        .unwrap_or_else(|| panic!("{path:?} is not UTF-8; env!() needs UTF-8 paths"))
        .to_string()
}

/// Writes `&["a", "b"]` as a Rust expression for `include!`.
fn write_array(dest: &Path, items: &[String]) {
    // `{:?}` of a str is a valid Rust string literal.
    let body: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    let text = format!("&[{}]\n", body.join(", "));
    fs::write(dest, text).unwrap_or_else(|e| panic!("write {dest:?}: {e}"));
}

/// FNV-1a, 64 bit: enough to tell builds apart, with no dependency.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // Separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
}
