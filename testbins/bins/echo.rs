//! `echo ARGS...`: writes its arguments joined by one space, then a newline.
//!
//! Arguments are written as raw bytes; there are no options (`-n` is printed
//! like any other word). Exits 1 if stdout cannot be written. Built by
//! `testbins/build.rs` as a static binary with only std.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let mut line = Vec::new();
    for (i, arg) in std::env::args_os().skip(1).enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(arg.as_bytes());
    }
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
        eprintln!("echo: write stdout: {e}");
        std::process::exit(1);
    }
}
