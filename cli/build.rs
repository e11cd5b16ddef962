//! Links the `corral` command as a fixed-address (non-PIE) executable.
//!
//! A position-independent `corral` carries about 18,000 relative
//! relocations: the dynamic loader rewrites them at every start, and each
//! page of `.data.rel.ro` they touch is a copy-on-write fault. A
//! short-lived command started once per container pays that every time
//! (0.2-0.3 ms of a 5 ms `corral run` here; see docs/performance.md,
//! "Session 6"). The cost is ASLR for the command's own code and data:
//! libraries, heap, stack and mmap stay randomized, as with Debian's
//! `runc`, which is also a fixed-address executable. `CORRAL_CLI_PIE=1`
//! builds a PIE. A static build (`+crt-static`, musl) is left as rustc
//! links it: `-no-pie` there would make a broken static-pie.

fn main() {
    println!("cargo:rerun-if-env-changed=CORRAL_CLI_PIE");
    let pie_asked = std::env::var_os("CORRAL_CLI_PIE").is_some_and(|v| v == "1");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let static_build = features.split(',').any(|f| f == "crt-static")
        || std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "musl");
    if !pie_asked && !static_build {
        println!("cargo:rustc-link-arg-bin=corral=-no-pie");
    }
}
