//! Waiting for a cgroup v2 `cgroup.events` key (`frozen 1`,
//! `populated 0`) without polling: the kernel signals a modification of
//! that file to inotify watchers each time a key changes (cgroup-v2.rst,
//! "cgroup.events ... a value change in this file generates a file
//! modified event").

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::inotify;

/// Waits until `<dir>/cgroup.events` has the line `<key> <value>`.
///
/// # Cancel safety
/// Cancel-safe: it only reads.
pub(crate) async fn wait_for(dir: &Path, key: &str, value: &str) -> io::Result<()> {
    let file = dir.join("cgroup.events");
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
    // Watch first, then read: a change between the two is not lost.
    inotify::add_watch(&fd, &file, inotify::WatchFlags::MODIFY)?;
    let fd = crate::sys::register(fd, tokio::io::Interest::READABLE)?;
    loop {
        if has(&file, key, value)? {
            return Ok(());
        }
        let mut guard = fd.readable().await?;
        drain(guard.get_inner())?;
        guard.clear_ready();
    }
}

/// Whether `file` holds `key value`.
pub(crate) fn has(file: &Path, key: &str, value: &str) -> io::Result<bool> {
    let text = std::fs::read_to_string(file)?;
    Ok(text
        .lines()
        .any(|l| l.split_once(' ') == Some((key, value))))
}

fn drain(fd: &OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
