//! Errors and logs, where runc's callers look for them: stderr, and the
//! `--log` file in text or JSON (conmon and containerd read the JSON).

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
            (Some(f), true) => builder.json().with_writer(clone_writer(f)).try_init(),
            (Some(f), false) => builder
                .with_ansi(false)
                .with_writer(clone_writer(f))
                .try_init(),
            (None, _) => builder.with_writer(std::io::stderr).try_init(),
        };
        Reporter { file, json }
    }

    /// Reports a fatal error: the whole cause chain, on stderr and in the log.
    pub fn error(&self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        eprintln!("corral: {msg}");
        if let Some(mut f) = self.file.as_ref() {
            let line = if self.json {
                serde_json::json!({"level": "error", "msg": msg, "time": now()}).to_string()
            } else {
                format!("time=\"{}\" level=error msg={:?}", now(), msg)
            };
            let _ = writeln!(f, "{line}");
        }
    }
}

fn clone_writer(f: &std::fs::File) -> std::sync::Mutex<std::fs::File> {
    std::sync::Mutex::new(f.try_clone().expect("dup of the log file"))
}

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}
