//! Handing a container's seccomp user-notification fd to the agent at
//! `linux.seccomp.listenerPath`, as the runtime spec describes and runc
//! does: connect to the agent's unix stream socket, send one message whose
//! bytes are the `ContainerProcessState` JSON and whose `SCM_RIGHTS`
//! carries the fd (named `"seccompFd"` in `fds`), then close our copy and
//! the connection. What the agent does with it is its business.
//!
//! It runs inside the create handshake, when the init reports the fd (sync
//! 1c in `docs/protocol.md`), so the container status in the state is
//! `creating`; for a process `exec` starts, inside the exec handshake, with
//! that process's pid as `pid` and the container's in `state`. The init does not wait for it: a call of the init that the
//! filter notifies blocks until the agent, which has the fd from here on,
//! answers. A failure (no agent listening) fails the create, which kills
//! the init.

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::plan::seccomp::Listener;

/// A container's seccomp filter and what its agent is told, kept for the
/// processes `exec` starts.
#[derive(Clone, Debug)]
pub(crate) struct ExecSeccomp {
    pub stored: crate::StoredSeccomp,
    pub bundle: std::path::PathBuf,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl ExecSeccomp {
    /// Where its listener fds go, with NOTIFY rules.
    pub(crate) fn listener(&self) -> Option<Listener> {
        self.stored.listener_path.as_ref().map(|path| Listener {
            path: path.clone(),
            metadata: self.stored.listener_metadata.clone(),
        })
    }
}

/// What the state JSON says about the process and its container.
pub(crate) struct ProcessState<'a> {
    pub id: &'a str,
    /// The process the fd's filter belongs to.
    pub pid: i32,
    /// The container's process (the same for the first process).
    pub container_pid: i32,
    /// `creating` for the first process, `running` (or `created`) for an
    /// exec'd one.
    pub status: &'a str,
    pub bundle: &'a std::path::Path,
    pub annotations: &'a std::collections::BTreeMap<String, String>,
}

/// The runtime spec's `ContainerProcessState`.
fn state_json(listener: &Listener, s: &ProcessState<'_>) -> Vec<u8> {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": s.pid,
        "metadata": listener.metadata,
        "state": {
            "ociVersion": "1.2.0",
            "id": s.id,
            "status": s.status,
            "pid": s.container_pid,
            "bundle": s.bundle,
            "annotations": s.annotations,
        },
    })
    .to_string()
    .into_bytes()
}

/// Sends `fd` with the state to the agent and closes it.
///
/// # Cancel safety
///
/// Cancelling drops the connection and the fd; the agent may have
/// received a partial message.
pub(crate) async fn deliver(
    listener: &Listener,
    fd: OwnedFd,
    state: &ProcessState<'_>,
) -> Result<()> {
    let op = |what: &str| format!("{what} linux.seccomp.listenerPath {:?}", listener.path);
    let mut stream = UnixStream::connect(&listener.path)
        .await
        .map_err(|e| Error::sys(op("connect to"), e))?;
    let body = state_json(listener, state);
    let sent = stream
        .async_io(Interest::WRITABLE, || {
            let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            let fds = [fd.as_fd()];
            control.push(SendAncillaryMessage::ScmRights(&fds));
            rustix::net::sendmsg(
                stream.as_fd(),
                &[IoSlice::new(&body)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        })
        .await
        .map_err(|e| Error::sys(op("send the seccomp fd to"), e))?;
    // The fd went with the first byte; the rest of a long state follows.
    stream
        .write_all(&body[sent..])
        .await
        .map_err(|e| Error::sys(op("send the state to"), e))?;
    let _ = stream.shutdown().await;
    drop(fd);
    Ok(())
}
