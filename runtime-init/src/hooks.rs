//! Step `hooks`: the OCI hooks that run inside the container's namespaces.
//!
//! - Before `pivot_root` ([`create`]): the init asks the parent to run
//!   `prestart` and `createRuntime` (runtime namespace, sync `run_hooks`),
//!   waits for `hooks_done`, then runs `createContainer` itself. Nothing is
//!   pivoted yet, so the hook's path resolves in the runtime's mount
//!   namespace while the hook runs in the container's namespaces, as the
//!   runtime spec asks (and as runc does, from its init).
//! - After the start signal ([`start`]): `startContainer`, whose path
//!   resolves inside the container, just before the workload's `execve`.
//!
//! Each hook gets the state JSON on stdin, exactly its `args` and `env`, and
//! is killed (`SIGKILL` through its pidfd) when its `timeout` passes: the
//! wait is a `poll` on the pidfd with that deadline. The hook's stdout and
//! stderr are `/dev/null`: fds 0–2 belong to the workload.
//!
//! It does not own the parent's hooks (`runtime/src/hooks.rs`).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};

use corral_protocol::{Hook, InitChannel, InitHooks};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Before `pivot_root`: the parent's `prestart`/`createRuntime` hooks,
/// then `createContainer`.
pub fn create(channel: &InitChannel, hooks: Option<&InitHooks>) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    if hooks.ask_parent {
        // sync 1b: run_hooks / hooks_done.
        channel
            .run_parent_hooks()
            .map_err(|source| Error::Protocol {
                op: "wait for the runtime's hooks",
                source,
            })?;
    }
    run_all(&hooks.create_container, &hooks.creating_state)
}

/// After the start signal, before `execve`: `startContainer`.
pub fn start(hooks: Option<&InitHooks>) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    run_all(&hooks.start_container, &hooks.created_state)
}

fn run_all(list: &[Hook], state: &str) -> Result<()> {
    for hook in list {
        run_one(hook, state.as_bytes())?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state: &[u8]) -> Result<()> {
    let path = hook.path.as_path();
    let fail = |op: &'static str, errno: Errno| Error::Hook {
        op,
        field: hook.field.clone(),
        path: path.to_owned(),
        errno,
    };
    let mut cmd = Command::new(path);
    if let Some((first, rest)) = hook.args.split_first() {
        cmd.arg0(first.as_path())
            .args(rest.iter().map(|a| a.as_path()));
    }
    cmd.env_clear();
    for entry in &hook.env {
        let bytes = entry.as_bytes();
        let eq = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
        let value = bytes.get(eq + 1..).unwrap_or_default();
        cmd.env(
            std::ffi::OsStr::from_bytes(&bytes[..eq]),
            std::ffi::OsStr::from_bytes(value),
        );
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail("spawn", crate::error::errno_of(&e)))?;
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child has a pid");
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| kill_after(&mut child, fail("pidfd_open", e)))?;
    write_state(&mut child, state);
    let deadline = hook.timeout_secs.map(|s| rustix::event::Timespec {
        tv_sec: s.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    });
    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
    let ready = loop {
        match rustix::event::poll(&mut fds, deadline.as_ref()) {
            Err(Errno::INTR) => continue,
            other => break other,
        }
    }
    .map_err(|e| kill_after(&mut child, fail("poll", e)))?;
    if ready == 0 {
        let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        let _ = child.wait();
        return Err(Error::HookFailed {
            field: hook.field.clone(),
            path: path.to_owned(),
            outcome: format!(
                "killed at its timeout of {} s",
                hook.timeout_secs.unwrap_or_default()
            ),
        });
    }
    let status = child
        .wait()
        .map_err(|e| fail("wait", crate::error::errno_of(&e)))?;
    if status.success() {
        return Ok(());
    }
    let outcome = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("ended with {status}"),
    };
    Err(Error::HookFailed {
        field: hook.field.clone(),
        path: path.to_owned(),
        outcome,
    })
}

/// Writes the state without blocking: a hook that never reads its stdin
/// must not hang the init. The pipe buffer (64 KiB, more than any state
/// without huge annotations) takes it whole; a hook that exits early gives
/// `EPIPE`, which is its business.
fn write_state(child: &mut Child, state: &[u8]) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = rustix::fs::fcntl_setfl(&stdin, rustix::fs::OFlags::NONBLOCK);
        let _ = stdin.write_all(state);
    }
}

fn kill_after(child: &mut Child, error: Error) -> Error {
    let _ = child.kill();
    let _ = child.wait();
    error
}
