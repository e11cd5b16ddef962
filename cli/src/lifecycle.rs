//! `create`, `start` and `run`: the container lifecycle commands.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use corral::{Runtime, Spec};
use tokio::signal::unix::{SignalKind, signal};

use crate::CreateArgs;
use crate::console;

/// `corral create`: returns once the container is created; its init stays
/// waiting on the start FIFO and outlives this process.
pub async fn create(rt: &Runtime, args: CreateArgs) -> anyhow::Result<i32> {
    let spec = load(&args)?;
    let mut c = rt
        .create(&args.id, spec)
        .detached(true)
        .no_pivot(args.no_pivot)
        .start_via_fifo()
        .await?;
    if let Err(e) = hand_over_console(&mut c, &args) {
        c.force_delete().await?;
        return Err(e);
    }
    if let Some(path) = &args.pid_file {
        if let Err(e) = write_pid_file(path, c.pid()) {
            c.force_delete().await?;
            return Err(e);
        }
    }
    c.detach();
    Ok(0)
}

/// `corral start`.
pub async fn start(rt: &Runtime, id: &str) -> anyhow::Result<i32> {
    rt.start_by_id(id).await?;
    Ok(0)
}

/// `corral run`: create, start, then wait in the foreground (forwarding
/// signals and bridging a terminal), or return at once with `--detach`.
pub async fn run(rt: &Runtime, args: CreateArgs, detach: bool) -> anyhow::Result<i32> {
    let spec = load(&args)?;
    let mut c = rt
        .create(&args.id, spec)
        .detached(detach)
        .no_pivot(args.no_pivot)
        .await?;
    let console = if args.console_socket.is_some() {
        hand_over_console(&mut c, &args)?;
        None
    } else {
        c.take_console()
    };
    // Before start, so that the process finds the caller's window size
    // from its first instruction.
    let bridge = match console {
        Some(console) if !detach => Some(console::Bridge::start(console)?),
        _ => None,
    };
    if let Some(path) = &args.pid_file {
        write_pid_file(path, c.pid())?;
    }
    c.start().await?;
    if detach {
        c.detach();
        return Ok(0);
    }
    let status = wait_forwarding_signals(&c, bridge.as_ref()).await?;
    if let Some(bridge) = bridge {
        bridge.finish().await;
    }
    c.delete().await?;
    Ok(status.shell_code())
}

fn load(args: &CreateArgs) -> anyhow::Result<Spec> {
    if args.preserve_fds > 0 {
        anyhow::bail!("--preserve-fds: unsupported: passing extra fds is not implemented yet");
    }
    Ok(Spec::from_bundle(&args.bundle)?)
}

/// Sends the pty master to `--console-socket`, as runc does.
fn hand_over_console(c: &mut corral::Container, args: &CreateArgs) -> anyhow::Result<()> {
    match (&args.console_socket, c.take_console()) {
        (Some(path), Some(master)) => console::send_to_socket(path, master),
        (Some(_), None) => anyhow::bail!("--console-socket given but process.terminal is false"),
        (None, Some(_)) => {
            anyhow::bail!("process.terminal is true: --console-socket is required with create")
        }
        (None, None) => Ok(()),
    }
}

/// A process the command line waits for in the foreground.
pub trait Foreground {
    /// Waits for its exit.
    fn wait(&self) -> impl std::future::Future<Output = corral::Result<corral::ExitStatus>>;
    /// Signals it.
    fn kill(&self, signal: i32) -> corral::Result<()>;
}

impl Foreground for corral::Container {
    fn wait(&self) -> impl std::future::Future<Output = corral::Result<corral::ExitStatus>> {
        corral::Container::wait(self)
    }
    fn kill(&self, signal: i32) -> corral::Result<()> {
        corral::Container::kill(self, signal)
    }
}

impl Foreground for corral::ExecProcess {
    fn wait(&self) -> impl std::future::Future<Output = corral::Result<corral::ExitStatus>> {
        corral::ExecProcess::wait(self)
    }
    fn kill(&self, signal: i32) -> corral::Result<()> {
        corral::ExecProcess::kill(self, signal)
    }
}

/// Waits for exit while relaying the signals a foreground runtime relays.
pub async fn wait_forwarding_signals(
    c: &impl Foreground,
    bridge: Option<&console::Bridge>,
) -> anyhow::Result<corral::ExitStatus> {
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
        SignalKind::user_defined1(),
        SignalKind::user_defined2(),
    ];
    let mut streams = Vec::new();
    for kind in kinds {
        streams.push((
            kind.as_raw_value(),
            signal(kind).context("install signal handler")?,
        ));
    }
    let mut winch = signal(SignalKind::window_change()).context("install SIGWINCH handler")?;
    loop {
        let any_signal = futures_select(&mut streams);
        tokio::select! {
            status = c.wait() => return Ok(status?),
            sig = any_signal => { let _ = c.kill(sig); }
            _ = winch.recv() => {
                if let Some(b) = bridge { b.resize_from_caller(); }
            }
        }
    }
}

/// The raw number of the first of `streams` to deliver.
async fn futures_select(streams: &mut [(i32, tokio::signal::unix::Signal)]) -> i32 {
    std::future::poll_fn(|cx| {
        for (raw, s) in streams.iter_mut() {
            if s.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*raw);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

pub fn write_pid_file(path: &Path, pid: i32) -> anyhow::Result<()> {
    let tmp = path.with_extension("corral-tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("write pid file {tmp:?}"))?;
    write!(f, "{pid}")?;
    std::fs::rename(&tmp, path).with_context(|| format!("write pid file {path:?}"))?;
    Ok(())
}
