//! Step Exec: `execve` the workload. On success the init socket closes
//! (it is close-on-exec) and the parent reads EOF; this step only ever
//! returns the error of a failed exec. The arguments were built by
//! `resolve`; the call itself is in `sys`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Error;
use crate::sys::{self, ExecArgs};

pub fn exec(args: &ExecArgs) -> Error {
    let errno = sys::execve(args);
    Error::Exec {
        path: PathBuf::from(OsStr::from_bytes(args.path().to_bytes())),
        errno,
    }
}
