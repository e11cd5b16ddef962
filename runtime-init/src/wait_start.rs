//! Step WaitStart: report `Ready`, then block until the start signal.
//!
//! Either a `Start` message on the init socket (the library's path), or,
//! for `corral create` / `corral start` (separate processes), the FIFO
//! whose `O_PATH` fd came with the spec: opening it for writing blocks
//! until `corral start` opens it for reading; the init then writes one byte
//! so that the reader knows it got through.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use corral_protocol::{InitChannel, ProcessOverride, StartVia};
use rustix::fs::{Mode, OFlags};
use rustix::io::write;

use crate::error::{Error, Result};
use crate::sys;

/// Returns the process override a `StartWith` carried, if any.
pub fn run(
    channel: &InitChannel,
    start_via: StartVia,
    fifo: Option<OwnedFd>,
) -> Result<Option<ProcessOverride>> {
    // sync 2: init reports ready (docs/protocol.md)
    channel.send_ready().map_err(|source| Error::Protocol {
        op: "send ready",
        source,
    })?;
    match start_via {
        StartVia::Socket => match channel.wait_start() {
            Ok(process) => Ok(process),
            Err(corral_protocol::Error::Closed) => Err(Error::ParentGone),
            Err(source) => Err(Error::Protocol {
                op: "wait for start",
                source,
            }),
        },
        StartVia::Fifo => {
            let fifo = fifo.expect("the protocol checks a Fifo spec carries the FIFO fd");
            wait_fifo(&fifo).map(|()| None)
        }
    }
}

fn wait_fifo(fifo: &OwnedFd) -> Result<()> {
    let path = sys::proc_fd_path(fifo.as_fd());
    let fail = |op: &'static str| {
        let path = PathBuf::from(OsStr::from_bytes(path.to_bytes()));
        move |errno| Error::WaitStart { op, path, errno }
    };
    // Reopening through /proc/self/fd needs the container's /proc: after
    // pivot_root the host's is gone. The kernel lets a process open its
    // own fds' magic links whatever its uid.
    let writer = rustix::fs::open(
        path.as_c_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open for writing"))?;
    match write(&writer, b"0") {
        Ok(1) => Ok(()),
        Ok(_) => Err(fail("write")(rustix::io::Errno::IO)),
        Err(errno) => Err(fail("write")(errno)),
    }
}
