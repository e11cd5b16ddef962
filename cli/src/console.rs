//! The caller's side of a container's terminal: bridging our own tty to
//! the pty master in raw mode (`corral run`), or handing the master to a
//! `--console-socket` listener (podman's conmon, containerd's shim).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use corral::Console;
use rustix::termios::{self, OptionalActions, Termios};

/// Copies between our stdio and the container's console until the
/// container's side closes; restores our terminal mode when finished.
pub struct Bridge {
    console: Arc<Console>,
    saved: Option<Termios>,
    output: Option<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    /// Puts our stdin in raw mode (when it is a terminal), copies our
    /// window size, and starts the two copies.
    pub fn start(console: Console) -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = if termios::isatty(&stdin) {
            let saved = termios::tcgetattr(&stdin).context("tcgetattr stdin")?;
            let mut raw = saved.clone();
            raw.make_raw();
            termios::tcsetattr(&stdin, OptionalActions::Now, &raw).context("tcsetattr stdin")?;
            Some(saved)
        } else {
            None
        };
        let console = Arc::new(console);
        let reader = console.clone();
        let output = tokio::spawn(async move {
            // EOF once the last slave fd closes: the process is gone.
            let _ = tokio::io::copy(&mut &*reader, &mut tokio::io::stdout()).await;
        });
        let writer = console.clone();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut &*writer).await;
        });
        let bridge = Bridge {
            console,
            saved,
            output: Some(output),
        };
        bridge.resize_from_caller();
        Ok(bridge)
    }

    /// Gives the container our window size (at start and on SIGWINCH).
    pub fn resize_from_caller(&self) {
        if let Ok(size) = termios::tcgetwinsize(std::io::stdin()) {
            let _ = self.console.resize(size.ws_row, size.ws_col);
        }
    }

    /// Drains the container's output, then restores our terminal.
    pub async fn finish(mut self) {
        if let Some(output) = self.output.take() {
            let _ = output.await;
        }
    }
}

/// Our terminal's size as `(rows, cols)`, when stdin is one.
pub fn caller_size() -> Option<(u16, u16)> {
    let stdin = std::io::stdin();
    if !termios::isatty(&stdin) {
        return None;
    }
    termios::tcgetwinsize(&stdin)
        .ok()
        .map(|s| (s.ws_row, s.ws_col))
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// Connects to the unix socket at `path` and sends `master` with
/// `SCM_RIGHTS`, with the pty's name as the payload, as runc does.
pub fn send_to_socket(path: &Path, console: Console) -> anyhow::Result<()> {
    let master: OwnedFd = console.into_fd().context("make the pty master blocking")?;
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let stream = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connect to console socket {path:?}"))?;
    let fds = [master.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let name = b"/dev/ptmx";
    rustix::net::sendmsg(
        &stream,
        &[std::io::IoSlice::new(name)],
        &mut control,
        SendFlags::empty(),
    )
    .with_context(|| format!("send console to {path:?}"))?;
    Ok(())
}
