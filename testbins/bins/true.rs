//! `true`: exits 0 and ignores its arguments.
//!
//! Built by `testbins/build.rs` as a static binary with only std.

fn main() {}
