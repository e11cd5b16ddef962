//! Links the `corral` command as a fixed-address (non-PIE) executable.
//!
//! A position-independent `corral` carries about 18,000 relative
//! relocations: the dynamic loader rewrites them at every start, and each
//! page of `.data.rel.ro` they touch is a copy-on-write fault. A
//! short-lived command started once per container pays that every time
//! (about 0.3 ms of a `corral run` here; see docs/performance.md,
//! "Session 6"). Libraries, heap, stack and mmap stay randomized. Set
//! `CORRAL_CLI_PIE=1` to build a PIE instead.

fn main() {
    println!("cargo:rerun-if-env-changed=CORRAL_CLI_PIE");
    if std::env::var_os("CORRAL_CLI_PIE").is_none_or(|v| v != "1") {
        println!("cargo:rustc-link-arg-bin=corral=-no-pie");
    }
}
