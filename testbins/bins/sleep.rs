//! `sleep SECONDS`: sleeps, then exits 0. SECONDS may be fractional (`0.25`).
//!
//! Exits 2 with a message on stderr when SECONDS is missing or not a
//! non-negative number. Built by `testbins/build.rs` as a static binary with
//! only std.

use std::time::Duration;

fn main() {
    let arg = std::env::args_os().nth(1);
    let secs = arg
        .as_ref()
        .and_then(|a| a.to_str())
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    match secs {
        Some(d) => std::thread::sleep(d),
        None => {
            eprintln!("usage: sleep SECONDS (got {arg:?})");
            std::process::exit(2);
        }
    }
}
