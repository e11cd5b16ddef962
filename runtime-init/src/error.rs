//! The init's one error type, and its mapping to the protocol's `InitError`.
//!
//! Each variant names the step that failed (one or two variants per
//! `protocol::Step`), carries what it was acting on (a path, an id, a
//! capability number) and keeps the errno as `#[source]`. Nothing here is
//! printed: an error crosses the init socket as data, once, from `main`
//! (see `channel::fail`). The runtime matches on `step` and `errno`; the
//! `message` is the rendered chain, for humans.

use std::error::Error as _;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use corral_protocol::{InitError, RawPath, Step};
use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}")]
    Protocol {
        op: &'static str,
        #[source]
        source: corral_protocol::Error,
    },
    /// The parent closed the socket while the init waited for `Start`:
    /// nobody is left to report to.
    #[error("parent went away before start")]
    ParentGone,
    #[error("{op} {path:?}")]
    Rootfs {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("{op} on {target:?} ({what})")]
    Mount {
        op: &'static str,
        what: String,
        target: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("{op} {path:?}")]
    Dev {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("{op}")]
    Console {
        op: &'static str,
        path: Option<PathBuf>,
        #[source]
        errno: Errno,
    },
    #[error("{op} lo")]
    Network {
        op: &'static str,
        #[source]
        errno: Errno,
    },
    #[error("{op} {path:?}")]
    PivotRoot {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("{op} {path:?}")]
    MaskedPath {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("{op} {path:?}")]
    ReadonlyPath {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("{op} {name:?}")]
    Hostname {
        op: &'static str,
        name: String,
        #[source]
        errno: Errno,
    },
    #[error("invalid sysctl key {key:?}")]
    SysctlKey { key: String },
    #[error("write sysctl {key:?}")]
    Sysctl {
        key: String,
        #[source]
        errno: Errno,
    },
    #[error("setrlimit resource {resource}")]
    Rlimit {
        resource: u32,
        #[source]
        errno: Errno,
    },
    #[error("write oom_score_adj {value}")]
    OomScoreAdj {
        value: i32,
        #[source]
        errno: Errno,
    },
    #[error("{op} {path:?}")]
    Cwd {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    /// `getcwd` names a directory outside the container's root
    /// (CVE-2024-21626: a leaked host fd as cwd).
    #[error("working directory {cwd:?} is outside the container root")]
    CwdUnreachable { cwd: PathBuf },
    #[error("{op} {id}")]
    User {
        op: &'static str,
        id: u32,
        #[source]
        errno: Errno,
    },
    #[error("{op} capability {cap}")]
    Capability {
        op: &'static str,
        cap: u32,
        #[source]
        errno: Errno,
    },
    #[error("{op}")]
    CapSets {
        op: &'static str,
        #[source]
        errno: Errno,
    },
    #[error("set no_new_privs")]
    NoNewPrivs {
        #[source]
        errno: Errno,
    },
    #[error("load seccomp filter {index}")]
    Seccomp {
        index: usize,
        #[source]
        errno: Errno,
    },
    #[error("mark inherited fds close-on-exec")]
    CloseFds {
        #[source]
        errno: Errno,
    },
    #[error("process args are empty")]
    EmptyArgs,
    #[error("executable {program:?} not found in PATH")]
    NotFound { program: PathBuf },
    #[error("{what} contains a NUL byte: {value:?}")]
    NulByte { what: &'static str, value: PathBuf },
    #[error("{op} {path:?}")]
    WaitStart {
        op: &'static str,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("execve {path:?}")]
    Exec {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    /// Exec mode: joining the target's namespaces or root.
    #[error("{op}{}", path.as_ref().map(|p| format!(" {p:?}")).unwrap_or_default())]
    Join {
        op: &'static str,
        path: Option<PathBuf>,
        #[source]
        errno: Errno,
    },
    /// Exec mode: making the process inside the target's pid namespace.
    #[error("{op}")]
    Spawn {
        op: &'static str,
        #[source]
        errno: Errno,
    },
    #[error("ioprio_set {ioprio:#x}")]
    IoPriority {
        ioprio: u32,
        #[source]
        errno: Errno,
    },
    #[error("sched_setattr policy {policy}")]
    Scheduler {
        policy: u32,
        #[source]
        errno: Errno,
    },
    #[error("set_mempolicy mode {mode} flags {flags:#x} nodes {nodes:?}")]
    MemoryPolicy {
        mode: u32,
        flags: u32,
        nodes: Vec<u32>,
        #[source]
        errno: Errno,
    },
    #[error("{op}")]
    Cgroup {
        op: &'static str,
        #[source]
        errno: Errno,
    },
    #[error("sched_setaffinity {cpus}")]
    CpuAffinity {
        cpus: String,
        #[source]
        errno: Errno,
    },
    #[error("personality {persona:#x}")]
    Personality {
        persona: u32,
        #[source]
        errno: Errno,
    },
    /// An OCI hook the init runs could not be started or waited for.
    #[error("{op} hook {field} {path:?}")]
    Hook {
        op: &'static str,
        field: String,
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    /// An OCI hook ran and failed: a non-zero exit, a signal, or killed at
    /// its timeout.
    #[error("hook {field} {path:?} {outcome}")]
    HookFailed {
        field: String,
        path: PathBuf,
        outcome: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The errno inside a `std::io::Error` (EIO for one without, which std's
/// fs calls never return).
pub fn errno_of(err: &std::io::Error) -> Errno {
    Errno::from_io_error(err).unwrap_or(Errno::IO)
}

impl Error {
    pub fn step(&self) -> Step {
        match self {
            Error::Protocol { .. } | Error::ParentGone => Step::Protocol,
            Error::Rootfs { .. } => Step::Rootfs,
            Error::Mount { .. } => Step::Mounts,
            Error::Dev { .. } => Step::Dev,
            Error::Console { .. } => Step::Console,
            Error::Network { .. } => Step::Network,
            Error::PivotRoot { .. } => Step::PivotRoot,
            Error::MaskedPath { .. } => Step::MaskedPaths,
            Error::ReadonlyPath { .. } => Step::ReadonlyPaths,
            Error::Hostname { .. } => Step::Hostname,
            Error::SysctlKey { .. } | Error::Sysctl { .. } => Step::Sysctl,
            Error::Rlimit { .. } => Step::Rlimits,
            Error::OomScoreAdj { .. } => Step::OomScoreAdj,
            Error::Cwd { .. } | Error::CwdUnreachable { .. } => Step::Cwd,
            Error::User { .. } => Step::User,
            Error::Capability { .. } | Error::CapSets { .. } => Step::Capabilities,
            Error::NoNewPrivs { .. } => Step::NoNewPrivs,
            Error::Seccomp { .. } => Step::Seccomp,
            Error::CloseFds { .. } => Step::CloseFds,
            Error::EmptyArgs | Error::NotFound { .. } | Error::NulByte { .. } => Step::Resolve,
            Error::WaitStart { .. } => Step::WaitStart,
            Error::Exec { .. } => Step::Exec,
            Error::Join { .. } => Step::Join,
            Error::Spawn { .. } => Step::Spawn,
            Error::Hook { .. } | Error::HookFailed { .. } => Step::Hooks,
            Error::Personality { .. } => Step::Personality,
            Error::IoPriority { .. } => Step::IoPriority,
            Error::Scheduler { .. } => Step::Scheduler,
            Error::MemoryPolicy { .. } => Step::MemoryPolicy,
            Error::CpuAffinity { .. } => Step::CpuAffinity,
            Error::Cgroup { .. } => Step::Cgroup,
        }
    }

    /// The raw errno, including one the kernel invented after rustix was
    /// built: `Errno::raw_os_error` keeps any number.
    pub fn errno(&self) -> Option<i32> {
        let errno = match self {
            Error::Protocol { source, .. } => match source {
                corral_protocol::Error::Io { errno, .. } => *errno,
                _ => return None,
            },
            Error::ParentGone | Error::CwdUnreachable { .. } | Error::HookFailed { .. } => {
                return None;
            }
            Error::SysctlKey { .. } | Error::EmptyArgs | Error::NulByte { .. } => Errno::INVAL,
            Error::NotFound { .. } => Errno::NOENT,
            Error::Rootfs { errno, .. }
            | Error::Mount { errno, .. }
            | Error::Dev { errno, .. }
            | Error::Console { errno, .. }
            | Error::Network { errno, .. }
            | Error::PivotRoot { errno, .. }
            | Error::MaskedPath { errno, .. }
            | Error::ReadonlyPath { errno, .. }
            | Error::Hostname { errno, .. }
            | Error::Sysctl { errno, .. }
            | Error::Rlimit { errno, .. }
            | Error::OomScoreAdj { errno, .. }
            | Error::Cwd { errno, .. }
            | Error::User { errno, .. }
            | Error::Capability { errno, .. }
            | Error::CapSets { errno, .. }
            | Error::NoNewPrivs { errno }
            | Error::Seccomp { errno, .. }
            | Error::CloseFds { errno }
            | Error::WaitStart { errno, .. }
            | Error::Exec { errno, .. }
            | Error::Join { errno, .. }
            | Error::Spawn { errno, .. }
            | Error::Hook { errno, .. }
            | Error::Personality { errno, .. }
            | Error::IoPriority { errno, .. }
            | Error::Scheduler { errno, .. }
            | Error::MemoryPolicy { errno, .. }
            | Error::CpuAffinity { errno, .. }
            | Error::Cgroup { errno, .. } => *errno,
        };
        Some(errno.raw_os_error())
    }

    /// The path (or name) the step was acting on, as raw bytes.
    pub fn path(&self) -> Option<RawPath> {
        let path = match self {
            Error::Rootfs { path, .. }
            | Error::Dev { path, .. }
            | Error::PivotRoot { path, .. }
            | Error::MaskedPath { path, .. }
            | Error::ReadonlyPath { path, .. }
            | Error::Cwd { path, .. }
            | Error::WaitStart { path, .. }
            | Error::Exec { path, .. }
            | Error::Hook { path, .. }
            | Error::HookFailed { path, .. } => path,
            Error::Mount { target, .. } => target,
            Error::Console { path, .. } | Error::Join { path, .. } => path.as_ref()?,
            Error::CwdUnreachable { cwd } => cwd,
            Error::NotFound { program } => program,
            Error::NulByte { value, .. } => value,
            Error::SysctlKey { key } | Error::Sysctl { key, .. } => {
                return Some(RawPath::from(key.as_str()));
            }
            _ => return None,
        };
        Some(RawPath(path.as_os_str().as_bytes().to_vec()))
    }

    /// The error and its causes, `": "`-separated.
    pub fn render(&self) -> String {
        let mut message = self.to_string();
        let mut cause = self.source();
        while let Some(err) = cause {
            message.push_str(": ");
            message.push_str(&err.to_string());
            cause = err.source();
        }
        message
    }

    pub fn to_init_error(&self) -> InitError {
        InitError {
            step: self.step(),
            path: self.path(),
            errno: self.errno(),
            message: self.render(),
        }
    }

    /// The init's exit status: like a shell's for a failed exec (127 when
    /// the program is missing, 126 otherwise), 1 for every other step.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { errno, .. } if *errno == Errno::NOENT => 127,
            Error::Exec { .. } => 126,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn mount_error_maps_to_step_mounts_with_path_and_errno() {
        let err = Error::Mount {
            op: "mount",
            what: "proc".into(),
            target: "/proc".into(),
            errno: Errno::PERM,
        };
        let init = err.to_init_error();
        assert_eq!(init.step, Step::Mounts);
        assert_eq!(init.path, Some(RawPath::from("/proc")));
        assert_eq!(init.errno, Some(libc::EPERM));
        assert!(
            init.message.starts_with("mount on \"/proc\" (proc): "),
            "{}",
            init.message
        );
    }

    #[test]
    fn non_utf8_path_crosses_as_raw_bytes() {
        let raw = b"/dev/\xff\xfe".to_vec();
        let err = Error::Dev {
            op: "mknod",
            path: PathBuf::from(OsStr::from_bytes(&raw)),
            errno: Errno::EXIST,
        };
        let init = err.to_init_error();
        assert_eq!(init.path, Some(RawPath(raw)));
        assert_eq!(init.errno, Some(libc::EEXIST));
        assert!(init.message.contains("\\xFF"), "{}", init.message);
    }

    #[test]
    fn unnamed_errno_keeps_its_raw_value() {
        // rustix's Errno holds any kernel errno (1..=4095, MAX_ERRNO) but
        // asserts on larger numbers, so 4242 cannot come out of a syscall:
        // 4095 is the largest one, and has no name.
        let err = Error::Exec {
            path: "/bin/x".into(),
            errno: Errno::from_raw_os_error(4095),
        };
        let init = err.to_init_error();
        assert_eq!(init.step, Step::Exec);
        assert_eq!(init.errno, Some(4095));
        assert!(init.message.contains("4095"), "{}", init.message);
        assert_eq!(err.exit_code(), 126);
    }

    #[test]
    fn init_error_with_errno_4242_round_trips_as_data() {
        // A number no kernel sends still travels as a plain i32.
        let init = InitError {
            step: Step::Mounts,
            path: None,
            errno: Some(4242),
            message: String::new(),
        };
        let json = serde_json::to_string(&init).unwrap();
        let back: InitError = serde_json::from_str(&json).unwrap();
        assert_eq!(back.errno, Some(4242));
    }

    #[test]
    fn exec_enoent_exits_127() {
        let err = Error::Exec {
            path: "/nope".into(),
            errno: Errno::NOENT,
        };
        assert_eq!(err.exit_code(), 127);
        assert_eq!(Error::EmptyArgs.exit_code(), 1);
    }

    #[test]
    fn resolve_not_found_is_enoent_naming_the_program() {
        let init = Error::NotFound {
            program: "sh".into(),
        }
        .to_init_error();
        assert_eq!(init.step, Step::Resolve);
        assert_eq!(init.errno, Some(libc::ENOENT));
        assert_eq!(init.path, Some(RawPath::from("sh")));
    }

    #[test]
    fn protocol_io_error_keeps_errno_and_chain() {
        let err = Error::Protocol {
            op: "send ready",
            source: corral_protocol::Error::Io {
                op: "sendmsg",
                errno: Errno::PIPE,
            },
        };
        let init = err.to_init_error();
        assert_eq!(init.step, Step::Protocol);
        assert_eq!(init.errno, Some(libc::EPIPE));
        assert!(
            init.message.starts_with("send ready: sendmsg: "),
            "{}",
            init.message
        );
        let closed = Error::Protocol {
            op: "recv spec",
            source: corral_protocol::Error::Closed,
        };
        assert_eq!(closed.errno(), None);
    }

    #[test]
    fn sysctl_key_error_names_the_key() {
        let init = Error::SysctlKey {
            key: "../etc".into(),
        }
        .to_init_error();
        assert_eq!(init.step, Step::Sysctl);
        assert_eq!(init.path, Some(RawPath::from("../etc")));
        assert_eq!(init.errno, Some(libc::EINVAL));
    }

    #[test]
    fn capability_error_names_the_capability_number() {
        let err = Error::Capability {
            op: "raise ambient",
            cap: 21,
            errno: Errno::PERM,
        };
        let init = err.to_init_error();
        assert_eq!(init.step, Step::Capabilities);
        assert!(
            init.message.starts_with("raise ambient capability 21: "),
            "{}",
            init.message
        );
    }
}
