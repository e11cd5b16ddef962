//! `corral`: the runc-compatible command line over the corral library.
//!
//! This crate parses runc's flags, prints runc's formats and maps errors
//! to runc's exit codes; every container operation is a library call.

mod cgroups;
mod console;
mod exec;
mod features;
mod lifecycle;
mod query;
mod quick_args;
mod report;
mod signal;
mod spec;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Defaults of flags that `quick_args` parses too.
const DEFAULT_ROOT: &str = "/run/corral";
const DEFAULT_LOG_FORMAT: &str = "text";
const DEFAULT_BUNDLE: &str = ".";

/// Global flags, as runc spells them.
#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about = "An async-first OCI container runtime (runc-compatible)"
)]
pub struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Write errors (and with --debug, debug events) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long, global = true, default_value = DEFAULT_LOG_FORMAT, value_parser = ["text", "json"])]
    log_format: String,
    /// Log debug events.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd cgroups (not supported: corral manages cgroupfs itself).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: auto, true or false (`spec --rootless` writes a
    /// rootless config: a user namespace mapping root to the caller).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = DEFAULT_BUNDLE)]
    bundle: PathBuf,
    /// Write the container's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the console's pty master.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for initramfs roots).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for compatibility: corral does not create session keyrings.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container id.
    id: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Create and start a container, then wait for it (or --detach).
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container runs.
        #[arg(long, short = 'd')]
        detach: bool,
    },
    /// Run a process in a created or running container.
    Exec(exec::ExecArgs),
    /// Print a container's state as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to a container's process (default SIGTERM).
    Kill {
        /// Signal every process of the container's cgroup, not only its
        /// init (a stopped container is then not an error, as with runc).
        #[arg(long, short = 'a')]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name or number.
        signal: Option<String>,
    },
    /// Delete a container.
    Delete {
        /// Kill a running container first.
        #[arg(long, short = 'f')]
        force: bool,
        /// Container id.
        id: String,
    },
    /// List containers.
    #[command(alias = "ps-all")]
    List {
        /// table or json.
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Print ids only.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Freeze every process of a container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container id.
        id: String,
    },
    /// Change the resource limits of a running container.
    Update(cgroups::UpdateArgs),
    /// Print resource usage events (JSON, one per line).
    Events {
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats events.
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Container id.
        id: String,
    },
    /// List the processes of a container: `ps` output (with PS_ARGS,
    /// default `-ef`) filtered to its pids, or a JSON array of pids.
    Ps {
        /// table or json.
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Container id.
        id: String,
        /// Arguments for ps(1).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print the runtime-spec features document (what corral supports).
    Features,
    /// Write a default config.json.
    Spec {
        /// Where to write it.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match quick_args::parse(&args) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&args),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // runc (urfave/cli) exits 1 on a usage error; help and
            // --version are not errors.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    // runc's `exec` reports its own failures (as opposed to the process's
    // exit status) with 255, so that callers can tell them apart.
    let failure_code = if matches!(cli.command, Command::Exec(_)) {
        255
    } else {
        1
    };
    let reporter = report::Reporter::new(cli.log.as_deref(), &cli.log_format, cli.debug);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime builds");
    let code = match tokio.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            reporter.error(&e);
            failure_code
        }
    };
    // Do not wait for blocking stdin readers of a bridged console.
    tokio.shutdown_background();
    std::process::exit(code);
}

/// Where the CLI keeps its `corral-init` file: next to the state root
/// (`/run/corral` → `/run/corral.init`), outside it, so the root holds
/// container directories only. Each process makes one container, so it
/// execs this file through a read-only mount rather than copying the init
/// into a memfd every time (see `RuntimeBuilder::init_cache`).
fn init_cache_dir(root: &std::path::Path) -> std::path::PathBuf {
    let mut name = root.file_name().unwrap_or_default().to_os_string();
    name.push(".init");
    root.with_file_name(name)
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!(
            "--systemd-cgroup: unsupported: corral manages cgroupfs directly and no systemd driver is built in"
        );
    }
    let rt = corral::Runtime::builder()
        .state_dir(&cli.root)
        .init_cache(init_cache_dir(&cli.root))
        // One container per process: a set made ahead would be removed
        // unused at exit.
        .cgroup_spares(0)
        .resident_init(false)
        .mount_ns_holds(0)
        .build()?;
    match cli.command {
        Command::Create(args) => lifecycle::create(&rt, args).await,
        Command::Start { id } => lifecycle::start(&rt, &id).await,
        Command::Run { create, detach } => lifecycle::run(&rt, create, detach).await,
        Command::Exec(args) => exec::exec(&rt, args).await,
        Command::State { id } => query::state(&rt, &id),
        Command::Kill { id, signal, all } => query::kill(&rt, &id, signal.as_deref(), all),
        Command::Delete { id, force } => query::delete(&rt, &id, force).await,
        Command::List { format, quiet } => query::list(&rt, &format, quiet),
        Command::Pause { id } => cgroups::pause(&rt, &id).await,
        Command::Resume { id } => cgroups::resume(&rt, &id).await,
        Command::Update(args) => cgroups::update(&rt, args),
        Command::Events {
            id,
            stats,
            interval,
        } => cgroups::events(&rt, &id, stats, &interval).await,
        Command::Ps {
            id,
            format,
            ps_args,
        } => cgroups::ps(&rt, &id, &format, &ps_args),
        Command::Features => features::print(),
        Command::Spec { bundle } => spec::write(&bundle, cli.rootless.as_deref() == Some("true")),
    }
}
