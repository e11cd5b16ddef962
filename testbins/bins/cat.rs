//! `cat [FILE...]`: copies each FILE (or stdin when there is none, or for
//! `-`) to stdout.
//!
//! A file that cannot be read is reported on stderr and skipped; the exit
//! status is then 1. Built by `testbins/build.rs` as a static binary with only
//! std.

use std::ffi::OsString;
use std::io::{self, Write};

fn main() {
    let mut files: Vec<OsString> = std::env::args_os().skip(1).collect();
    if files.is_empty() {
        files.push("-".into());
    }
    let mut out = io::stdout().lock();
    let mut status = 0;
    for file in &files {
        let copied = if file == "-" {
            io::copy(&mut io::stdin().lock(), &mut out)
        } else {
            std::fs::File::open(file).and_then(|mut f| io::copy(&mut f, &mut out))
        };
        if let Err(e) = copied.and_then(|_| out.flush()) {
            eprintln!("cat: {file:?}: {e}");
            status = 1;
        }
    }
    std::process::exit(status);
}
