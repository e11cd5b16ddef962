//! Errors and logs, where runc's callers look for them: stderr, and the
//! `--log` file in text or JSON. The JSON lines are logrus's, as runc
//! writes them: `{"level":"error","msg":"...","time":"<RFC 3339>"}`.
//! containerd's runc shim decodes every line of that file into
//! `{Level, Msg, Time time.Time}` (go-runc `getLastRuntimeError`), so
//! `time` must be RFC 3339 on every line; conmon reads `msg` the same way.
//! Debug events go to the same file through tracing (their JSON has no
//! `time` key, which the decoders leave zero).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Where errors go.
pub struct Reporter {
    file: Option<std::fs::File>,
    json: bool,
}

impl Reporter {
    /// Opens `--log` (appending) and installs a tracing subscriber: to the
    /// log file when given, else to stderr; debug level with `--debug`.
    pub fn new(log: Option<&Path>, format: &str, debug: bool) -> Self {
        let file = log.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
        let json = format == "json";
        let level = if debug { "debug" } else { "warn" };
        let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        let _ = match (&file, json) {
            (Some(f), true) => builder
                .json()
                .without_time()
                .with_writer(clone_writer(f))
                .try_init(),
            (Some(f), false) => builder
                .with_ansi(false)
                .with_writer(clone_writer(f))
                .try_init(),
            (None, _) => builder.with_writer(std::io::stderr).try_init(),
        };
        Reporter { file, json }
    }

    /// Reports a fatal error: the whole cause chain, on stderr and in the
    /// log, in runc's words where a caller matches on them.
    pub fn error(&self, e: &anyhow::Error) {
        let msg = message(e);
        eprintln!("corral: {msg}");
        self.log_error(&msg);
    }

    /// Writes one error line to `--log`, if given.
    pub fn log_error(&self, msg: &str) {
        if let Some(mut f) = self.file.as_ref() {
            let time = rfc3339_seconds();
            let line = if self.json {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            } else {
                format!("time={time:?} level=error msg={msg:?}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The error chain as one line. Where runc's callers test runc's text,
/// it leads with runc's words: containerd's shim takes "container not
/// running" from `kill` as "already finished", and podman takes "does not
/// exist" from `state` as "gone" (corral's own `NotFound` says that).
pub fn message(e: &anyhow::Error) -> String {
    let chain = format!("{e:#}");
    match e.downcast_ref::<corral::Error>() {
        Some(corral::Error::State {
            state: "stopped", ..
        }) => format!("container not running: {chain}"),
        Some(corral::Error::State {
            state: "paused",
            operation: "exec",
            ..
        }) => format!("cannot exec in a paused container: {chain}"),
        Some(corral::Error::State {
            state: "paused", ..
        }) => format!("container paused: {chain}"),
        Some(corral::Error::State {
            operation: "resume",
            ..
        }) => format!("container not paused: {chain}"),
        _ => chain,
    }
}

fn clone_writer(f: &std::fs::File) -> std::sync::Mutex<std::fs::File> {
    std::sync::Mutex::new(f.try_clone().expect("dup of the log file"))
}

/// Now in RFC 3339 at second precision, as logrus writes it.
fn rfc3339_seconds() -> String {
    let now = corral::rfc3339_now();
    // `2024-05-01T12:00:00.123456789Z` → `2024-05-01T12:00:00Z`.
    match now.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => now,
    }
}
