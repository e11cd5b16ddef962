//! The init's end of the init socket: adopting it from `argv[1]`, the panic
//! hook, log frames and the one place errors are reported.
//!
//! The channel lives in a static so that the panic hook and `warn` (the
//! init's equivalent of a `tracing` event) can reach it from any step;
//! steps that take part in the protocol (console, wait_start) are handed it
//! explicitly. It never touches fds 0-2, which belong to the workload.

use std::sync::OnceLock;

use corral_protocol::{InitChannel, InitError, LogLevel, LogRecord, RawPath, Step};
use rustix::io::{FdFlags, fcntl_setfd};

use crate::error::Error;
use crate::sys;

static CHANNEL: OnceLock<InitChannel> = OnceLock::new();

/// Adopts the socket named by `argv[1]`, marks it close-on-exec (the
/// runtime dup2'd it without, so that it survived the exec of this binary;
/// with it, a successful `execve` of the workload closes it and the parent
/// reads EOF) and installs the panic hook.
///
/// Exits with status 1 when there is no usable socket: there is nobody to
/// report to, and stderr belongs to the workload.
pub fn connect() -> &'static InitChannel {
    let Some(fd) = std::env::args_os()
        .nth(1)
        .and_then(|arg| sys::take_init_socket(&arg))
    else {
        std::process::exit(1);
    };
    let cloexec = fcntl_setfd(&fd, FdFlags::CLOEXEC);
    let channel = CHANNEL.get_or_init(|| InitChannel::from_fd(fd));
    std::panic::set_hook(Box::new(report_panic));
    if let Err(errno) = cloexec {
        fail(
            channel,
            Error::Protocol {
                op: "mark init socket close-on-exec",
                source: corral_protocol::Error::Io { op: "fcntl", errno },
            },
        );
    }
    channel
}

/// Replaces the default hook, which would print to the workload's stderr.
fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    if let Some(channel) = CHANNEL.get() {
        let error = InitError {
            step: Step::Panic,
            path: None,
            errno: None,
            message: info.to_string(),
        };
        let _ = channel.send_error(&error);
    }
    std::process::exit(1);
}

/// Reports `error` to the parent (unless the parent is gone) and exits
/// with the error's status.
pub fn fail(channel: &InitChannel, error: Error) -> ! {
    if !matches!(error, Error::ParentGone) {
        // Best effort: if the parent is gone there is nobody to tell.
        let _ = channel.send_error(&error.to_init_error());
    }
    std::process::exit(error.exit_code())
}

/// Sends a warning (a degraded path, such as a fallback) for the runtime to
/// log in the container's span. Best effort: a log frame that cannot be
/// sent is not worth failing the container for.
pub fn warn(step: Step, message: &str, path: Option<&[u8]>) {
    log(LogLevel::Warn, step, message, path);
}

/// Sends a log record at `level`; best effort, like [`warn`].
pub fn log(level: LogLevel, step: Step, message: &str, path: Option<&[u8]>) {
    if let Some(channel) = CHANNEL.get() {
        let record = LogRecord {
            level,
            step,
            message: message.to_owned(),
            path: path.map(|p| RawPath(p.to_vec())),
        };
        let _ = channel.send_log(&record);
    }
}
