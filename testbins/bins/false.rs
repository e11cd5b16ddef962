//! `false`: exits 1 and ignores its arguments.
//!
//! Built by `testbins/build.rs` as a static binary with only std.

fn main() {
    std::process::exit(1);
}
