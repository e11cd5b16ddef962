//! `corral exec`: run one more process in a created or running container,
//! with runc's flags. The process is built as runc builds it: from
//! `--process FILE` as given, or else from the container's own
//! `process` in its bundle's config.json, with the command line's args
//! and the flags' overrides.

use std::path::PathBuf;

use anyhow::Context;
use corral::Runtime;
use corral::oci_spec::runtime::{BoxBuilder, Capabilities, Capability, Process};

use crate::console;
use crate::lifecycle::{wait_forwarding_signals, write_pid_file};

/// `corral exec` flags, as runc spells them.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// An OCI `process` JSON file; ARGS and the process flags are then
    /// ignored.
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(long, short = 't')]
    tty: bool,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (with --tty).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Set an environment variable (KEY=value).
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// uid[:gid] to run as.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Add a capability (CAP_NET_ADMIN) to the bounding, effective and
    /// permitted sets.
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    /// Set no_new_privileges.
    #[arg(long)]
    no_new_privs: bool,
    /// Pass N extra fds (not supported yet).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container id.
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `corral exec`: exits with the process's status (128+N for a signal).
pub async fn exec(rt: &Runtime, args: ExecArgs) -> anyhow::Result<i32> {
    if args.preserve_fds > 0 {
        anyhow::bail!("--preserve-fds: unsupported: passing extra fds is not implemented yet");
    }
    let process = build_process(rt, &args)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && args.detach && args.console_socket.is_none() {
        anyhow::bail!("--tty with --detach needs --console-socket");
    }
    if !terminal && args.console_socket.is_some() {
        anyhow::bail!("--console-socket given but the process has no terminal (--tty)");
    }
    let mut p = rt
        .exec_by_id(&args.id, process)
        .detached(args.detach)
        .await?;
    let console = p.take_console();
    let bridge = match (console, &args.console_socket) {
        (Some(c), Some(path)) => {
            console::send_to_socket(path, c)?;
            None
        }
        (Some(c), None) => Some(console::Bridge::start(c)?),
        (None, _) => None,
    };
    if let Some(path) = &args.pid_file {
        write_pid_file(path, p.pid())?;
    }
    if args.detach {
        p.detach();
        return Ok(0);
    }
    let status = wait_forwarding_signals(&p, bridge.as_ref()).await?;
    if let Some(bridge) = bridge {
        bridge.finish().await;
    }
    Ok(status.shell_code())
}

fn build_process(rt: &Runtime, args: &ExecArgs) -> anyhow::Result<Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read process file {path:?}"))?;
        return serde_json::from_str(&text).with_context(|| format!("parse process file {path:?}"));
    }
    if args.args.is_empty() {
        anyhow::bail!("exec needs a command (or --process FILE)");
    }
    let (stored, _) = rt.state(&args.id)?;
    // The container's own process is the base, as in runc; a bundle that is
    // gone or unreadable leaves the OCI defaults.
    let mut p = corral::Spec::from_bundle(&stored.bundle)
        .ok()
        .and_then(|s| s.oci().process().clone())
        .unwrap_or_default();
    p.set_args(Some(args.args.clone()));
    p.set_terminal(Some(args.tty));
    p.set_console_size(None);
    if args.tty && args.console_socket.is_none() {
        if let Some((rows, cols)) = console::caller_size() {
            let size = BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()?;
            p.set_console_size(Some(size));
        }
    }
    let mut env = p.env().clone().unwrap_or_default();
    for entry in &args.env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(entry.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        let u = p.user_mut();
        u.set_uid(uid);
        u.set_gid(gid);
    }
    if !args.cap.is_empty() {
        add_caps(&mut p, &args.cap)?;
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `uid[:gid]`, numeric (a gid of 0 when left out, as runc).
fn parse_user(user: &str) -> anyhow::Result<(u32, u32)> {
    let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
    let parse = |s: &str| {
        s.parse::<u32>()
            .with_context(|| format!("--user {user:?}: expected uid[:gid] as numbers"))
    };
    Ok((parse(uid)?, parse(gid)?))
}

/// Adds each capability to the bounding, effective and permitted sets, as
/// runc does. A process without `capabilities` keeps every one already.
fn add_caps(p: &mut Process, names: &[String]) -> anyhow::Result<()> {
    let mut caps = p.capabilities().clone();
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::json!(name))
            .with_context(|| format!("--cap {name:?}: unknown capability"))?;
        if let Some(caps) = &mut caps {
            let add = |set: &Option<Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
    }
    p.set_capabilities(caps);
    Ok(())
}
