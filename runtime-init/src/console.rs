//! Step Console: the container's pseudo-terminal, when `process.terminal`.
//!
//! Owns opening the ptmx of the container's own devpts (resolved inside the
//! rootfs, so the pty is not one of the host's), getting the slave with
//! `TIOCGPTPEER` (no path lookup of `/dev/pts/N`, which a container could
//! race), binding it over `/dev/console`, handing the master to the parent
//! and making the slave the controlling terminal and stdio. In exec mode
//! (`setup_exec`) the process is already inside the container's root, and
//! `/dev/console` is left to the container's own console. It does not
//! mount devpts (that is one of the spec's mounts).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use corral_protocol::{InitChannel, ProcessSpec};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::pty::{OpenptFlags, grantpt, ioctl_tiocgptpeer, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use crate::error::{Error, Result};
use crate::in_root;
use crate::rootfs::Rootfs;
use crate::sys;

const PTMX: [&[u8]; 2] = [b"/dev/pts/ptmx", b"/dev/ptmx"];
const CONSOLE: &[u8] = b"/dev/console";

pub fn setup(channel: &InitChannel, root: &Rootfs, process: &ProcessSpec) -> Result<()> {
    let (master, slave) = open_pty(root.fd(), process)?;
    bind_console(root, &slave)?;
    send_master(channel, master)?;
    make_controlling(slave)
}

/// Exec mode: a new pty of the container's devpts (the process is already
/// inside the container's root), without touching `/dev/console`, which
/// belongs to the container's own console.
pub fn setup_exec(channel: &InitChannel, process: &ProcessSpec) -> Result<()> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(fail("open", Some(b"/")))?;
    let (master, slave) = open_pty(root.as_fd(), process)?;
    send_master(channel, master)?;
    make_controlling(slave)
}

fn send_master(channel: &InitChannel, master: OwnedFd) -> Result<()> {
    channel
        .send_console(master.as_fd())
        .map_err(|source| Error::Protocol {
            op: "send console",
            source,
        })
}

/// A pty pair from the ptmx under `root`, the slave sized as asked.
fn open_pty(root: BorrowedFd<'_>, process: &ProcessSpec) -> Result<(OwnedFd, OwnedFd)> {
    let master = open_ptmx(root)?;
    grantpt(&master).map_err(fail("grantpt", None))?;
    unlockpt(&master).map_err(fail("unlockpt", None))?;
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let slave =
        ioctl_tiocgptpeer(&master, flags).map_err(fail("open pty slave (TIOCGPTPEER)", None))?;
    if let Some((rows, cols)) = process.console_size {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&slave, size).map_err(fail("set window size", None))?;
    }
    Ok((master, slave))
}

fn open_ptmx(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::NOCTTY;
    match in_root::open_with(root, PTMX[0], flags) {
        Err(Errno::NOENT) => {
            in_root::open_with(root, PTMX[1], flags).map_err(fail("open", Some(PTMX[1])))
        }
        other => other.map_err(fail("open", Some(PTMX[0]))),
    }
}

/// `/dev/console` in the container is the slave, as on a real console.
fn bind_console(root: &Rootfs, slave: &OwnedFd) -> Result<()> {
    let target = in_root::create_file(root.fd(), CONSOLE).map_err(fail("create", Some(CONSOLE)))?;
    let (source, target) = (
        sys::proc_fd_path(slave.as_fd()),
        sys::proc_fd_path(target.as_fd()),
    );
    rustix::mount::mount_bind(source.as_c_str(), target.as_c_str())
        .map_err(fail("bind pty slave onto", Some(CONSOLE)))
}

/// A new session whose controlling terminal is the slave, on fds 0-2.
fn make_controlling(slave: OwnedFd) -> Result<()> {
    rustix::process::setsid().map_err(fail("setsid", None))?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(fail("set controlling terminal", None))?;
    rustix::stdio::dup2_stdin(&slave).map_err(fail("dup2 onto stdin", None))?;
    rustix::stdio::dup2_stdout(&slave).map_err(fail("dup2 onto stdout", None))?;
    rustix::stdio::dup2_stderr(&slave).map_err(fail("dup2 onto stderr", None))?;
    Ok(())
}

fn fail(op: &'static str, path: Option<&[u8]>) -> impl FnOnce(Errno) -> Error {
    use std::os::unix::ffi::OsStrExt;
    let path = path.map(|p| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(p)));
    move |errno| Error::Console { op, path, errno }
}
