//! The crate's one error type. Each variant names the operation that failed
//! and what it acted on; the cause is kept as `source`.

use std::path::PathBuf;

use corral_protocol::InitError;

/// Errors from the corral runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec asks for something this version of corral does not do.
    #[error("unsupported: {field}: {reason}")]
    Unsupported {
        /// The config field, as a JSON path (`linux.seccomp`).
        field: String,
        /// Why, or what to do instead.
        reason: String,
    },
    /// A spec field has a value that cannot be honoured.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// The config field, as a JSON path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle's `config.json` could not be read or parsed.
    #[error("load {path:?}")]
    LoadSpec {
        /// The config file.
        path: PathBuf,
        /// The parse or I/O error.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// The rootfs is missing or not a directory.
    #[error("rootfs {path:?}")]
    Rootfs {
        /// The rootfs path as resolved on the host.
        path: PathBuf,
        /// Why it is unusable.
        #[source]
        source: std::io::Error,
    },
    /// The init binary could not be prepared.
    #[error("init binary {path:?}")]
    InitBinary {
        /// The binary (or `memfd:corral-init`).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A container id is empty, too long, or has characters other than
    /// `[A-Za-z0-9_.-]`.
    #[error("invalid container id {id:?}")]
    InvalidId {
        /// The id.
        id: String,
    },
    /// A container with this id already exists.
    #[error("container {id:?} already exists")]
    Exists {
        /// The id.
        id: String,
    },
    /// No container with this id.
    #[error("container {id:?} does not exist")]
    NotFound {
        /// The id.
        id: String,
    },
    /// The operation is not valid in the container's current state.
    #[error("container {id:?} is {state}, cannot {operation}")]
    State {
        /// The id.
        id: String,
        /// Its current state (`created`, `running`, `stopped`).
        state: &'static str,
        /// What was asked.
        operation: &'static str,
    },
    /// A system call of the runtime itself failed.
    #[error("{op}")]
    Sys {
        /// The call and what it acted on (`clone3`, `open state dir`).
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The init socket carried something wrong.
    #[error("init protocol of container {container_id:?}")]
    Protocol {
        /// The container.
        container_id: String,
        /// The protocol error.
        #[source]
        source: corral_protocol::Error,
    },
    /// The init reported a failed setup step.
    #[error("container {container_id:?}")]
    Init {
        /// The container.
        container_id: String,
        /// The init's structured error.
        #[source]
        source: InitError,
    },
    /// The child died before its init could report anything (for example
    /// `execve` of `corral-init` itself failed).
    #[error("container {container_id:?}: init exited before reporting ({status})")]
    InitDied {
        /// The container.
        container_id: String,
        /// How it ended.
        status: crate::ExitStatus,
    },
    /// An OCI hook run by the runtime failed, timed out or could not be
    /// started.
    #[error("hook {field} {path:?}: {reason}")]
    Hook {
        /// The config field (`hooks.createRuntime[0]`).
        field: String,
        /// The hook's program.
        path: PathBuf,
        /// What went wrong (exit status and the tail of its stderr, or the
        /// timeout).
        reason: String,
    },
    /// Reading or writing the container's state directory failed.
    #[error("state {path:?}")]
    StateDir {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn sys(op: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Sys {
            op: op.into(),
            source: source.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The init's structured error, when the failure happened inside it.
    pub fn init_error(&self) -> Option<&InitError> {
        match self {
            Error::Init { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
