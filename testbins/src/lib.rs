//! Static test binaries (`true`, `false`, `sleep`, `echo`, `cat`,
//! `stamp-exit`, `probe`) and builders for the root filesystems that
//! corral's tests and benches run containers in.
//!
//! `build.rs` compiles each `bins/<name>.rs` with plain rustc into a static
//! binary, so that the binaries run in a rootfs with no libc. This crate owns
//! those binaries and the rootfs layout; it does not start containers, and
//! it does not mount anything (the runtime mounts /proc, /dev and so on over
//! the empty directories laid out here).
//!
//! `probe` is how end-to-end tests look inside a container: see
//! `bins/probe.rs` for its commands and JSON output.

mod elf;
mod rootfs;

use std::path::Path;

pub use elf::is_statically_linked;
pub use rootfs::{BUSYBOX, build_busybox_rootfs, build_rootfs, shared_rootfs};

/// Names of the binaries built from `bins/*.rs`, sorted.
pub const BINS: &[&str] = include!(concat!(env!("OUT_DIR"), "/bin_names.rs"));

/// Absolute paths of the binaries, in the order of [`BINS`].
const BIN_PATHS: &[&str] = include!(concat!(env!("OUT_DIR"), "/bin_paths.rs"));

/// Hash of the binaries' contents, from `build.rs`.
const BUILD_ID: &str = env!("CORRAL_TESTBINS_BUILD_ID");

/// Path of the built binary `name` (one of [`BINS`]) in cargo's `OUT_DIR`.
///
/// # Panics
///
/// If `name` is not in [`BINS`].
pub fn bin_path(name: &str) -> &'static Path {
    match BINS.iter().position(|bin| *bin == name) {
        Some(idx) => Path::new(BIN_PATHS[idx]),
        None => panic!("corral-testbins has no binary {name:?}; it has {BINS:?}"),
    }
}
