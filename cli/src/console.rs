//! The caller's side of a container's terminal: bridging our own tty to
//! the pty master in raw mode (`corral run`), or handing the master to a
//! `--console-socket` listener (podman's conmon, containerd's shim).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::Context;
use rustix::termios::{self, OptionalActions, Termios};

/// Copies between our stdio and the pty master until the container's side
/// closes; restores our terminal mode when finished.
pub struct Bridge {
    master: OwnedFd,
    saved: Option<Termios>,
    output: Option<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    /// Puts our stdin in raw mode (when it is a terminal), copies our
    /// window size, and starts the two copies.
    pub fn start(master: OwnedFd) -> anyhow::Result<Self> {
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
        let bridge_master = master.try_clone().context("dup pty master")?;
        let reader =
            tokio::fs::File::from_std(master.try_clone().context("dup pty master")?.into());
        let mut writer = tokio::fs::File::from_std(bridge_master.into());
        let output = tokio::spawn(async move {
            let mut reader = reader;
            // EIO once the last slave fd closes: the container is gone.
            let _ = tokio::io::copy(&mut reader, &mut tokio::io::stdout()).await;
        });
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut writer).await;
        });
        let bridge = Bridge {
            master,
            saved,
            output: Some(output),
        };
        bridge.resize_from_caller();
        Ok(bridge)
    }

    /// Gives the container our window size (at start and on SIGWINCH).
    pub fn resize_from_caller(&self) {
        if let Ok(size) = termios::tcgetwinsize(std::io::stdin()) {
            let _ = termios::tcsetwinsize(&self.master, size);
        }
    }

    /// Drains the container's output, then restores our terminal.
    pub async fn finish(mut self) {
        if let Some(output) = self.output.take() {
            let _ = output.await;
        }
    }
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
pub fn send_to_socket(path: &Path, master: OwnedFd) -> anyhow::Result<()> {
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
