//! The messages that cross the init socket, and the data they carry.
//!
//! This module owns the *content* of the protocol: the init spec (what the
//! init needs to set a container up, already translated from the OCI config by
//! the runtime), the events the init reports, and the structured error. It
//! knows nothing of OCI types and nothing of framing (see `frame`).
//!
//! Paths are [`RawPath`]: container paths need not be UTF-8.

use serde::{Deserialize, Serialize};

/// A path or other byte string that need not be UTF-8.
///
/// Serialised as a JSON string when it is valid UTF-8 and as an array of
/// bytes otherwise; both forms decode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawPath(pub Vec<u8>);

impl RawPath {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for RawPath {
    fn from(s: &str) -> Self {
        RawPath(s.as_bytes().to_vec())
    }
}

impl From<&std::path::Path> for RawPath {
    fn from(p: &std::path::Path) -> Self {
        use std::os::unix::ffi::OsStrExt;
        RawPath(p.as_os_str().as_bytes().to_vec())
    }
}

impl From<std::path::PathBuf> for RawPath {
    fn from(p: std::path::PathBuf) -> Self {
        use std::os::unix::ffi::OsStringExt;
        RawPath(p.into_os_string().into_vec())
    }
}

impl RawPath {
    /// The path as a `Path` (no conversion: Unix paths are bytes).
    pub fn as_path(&self) -> &std::path::Path {
        use std::os::unix::ffi::OsStrExt;
        std::path::Path::new(std::ffi::OsStr::from_bytes(&self.0))
    }
}

impl Serialize for RawPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Bytes(Vec<u8>),
        }
        Ok(match Either::deserialize(d)? {
            Either::Text(t) => RawPath(t.into_bytes()),
            Either::Bytes(b) => RawPath(b),
        })
    }
}

/// How the init learns that it may exec the workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartVia {
    /// A `Start` message on the init socket (the library's path).
    #[default]
    Socket,
    /// The FIFO whose `O_PATH` fd travels with the spec frame: the init
    /// blocks opening it for writing until `corral start` opens it for
    /// reading, so the init outlives the process that created it.
    Fifo,
}

/// One mount for the init to make, already translated from the OCI config.
///
/// `flags` are `mount(2)` `MS_*` bits (`MS_BIND`, `MS_REC`, `MS_RDONLY`...);
/// for a bind mount the init binds first and then remounts with the
/// remaining flags, since the kernel ignores them on the first call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountOp {
    /// Host path of a bind source, or the source name for other types.
    pub source: Option<RawPath>,
    /// Absolute path inside the container; resolved inside the rootfs.
    pub destination: RawPath,
    /// Filesystem type (`proc`, `tmpfs`, ...); `None` for binds.
    pub fstype: Option<String>,
    /// `MS_*` flags for `mount(2)`.
    pub flags: u64,
    /// Propagation flags (`MS_SHARED`, `MS_SLAVE`, ..., maybe `| MS_REC`)
    /// applied after the mount, `0` for none.
    pub propagation: u64,
    /// Filesystem-specific data (`mode=755,size=65536k`).
    pub data: Option<String>,
    /// `mount_setattr(AT_RECURSIVE)` after the mount (the `rro`, `rnosuid`,
    /// ... options); `None` for none.
    #[serde(default)]
    pub recursive: Option<MountAttr>,
    /// The mount arrives ready-made as a detached mount fd in a
    /// [`ToInit::MountFd`] message naming this op's index (an idmapped
    /// bind the runtime made with `open_tree` and `mount_setattr`): the
    /// init moves it onto the destination instead of binding `source`
    /// (kept for messages), then applies the flags, `recursive` and
    /// `propagation` as for any bind.
    #[serde(default)]
    pub detached: bool,
    /// `tmpcopyup`: the new tmpfs is made detached (`fsopen`/`fsmount`),
    /// filled with a copy of what the rootfs has at the destination, and
    /// only then moved onto it.
    #[serde(default)]
    pub copy_up: bool,
}

/// `MOUNT_ATTR_*` bits set and cleared on a mount and every mount below it
/// (mount_setattr(2) with `AT_RECURSIVE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountAttr {
    /// `attr_set`.
    pub set: u64,
    /// `attr_clr` (includes `MOUNT_ATTR__ATIME` when `set` picks an atime
    /// mode, as the kernel requires).
    pub clear: u64,
}

/// A device node to create under the container's `/dev`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute path inside the container.
    pub path: RawPath,
    /// `c` (character), `b` (block) or `p` (FIFO).
    pub kind: char,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A symbolic link to create inside the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    /// What the link points to (not resolved).
    pub target: RawPath,
    /// Absolute path of the link inside the container.
    pub link: RawPath,
}

/// A resource limit for `setrlimit(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_*` number.
    pub resource: u32,
    /// Soft limit (`u64::MAX` is infinity).
    pub soft: u64,
    /// Hard limit (`u64::MAX` is infinity).
    pub hard: u64,
}

/// The five capability sets as bit masks (bit N is capability N).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    /// Bounding set: every capability not in it is dropped.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Ambient set.
    pub ambient: u64,
}

/// The workload process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// `argv`; `args[0]` is resolved through the `PATH` in `env` unless it
    /// contains a `/`.
    pub args: Vec<RawPath>,
    /// `KEY=value` entries.
    pub env: Vec<RawPath>,
    /// Working directory inside the container.
    pub cwd: RawPath,
    /// Whether stdio is a new pseudo-terminal whose master goes to the parent.
    pub terminal: bool,
    /// Initial terminal size `(rows, cols)`, when `terminal`.
    pub console_size: Option<(u16, u16)>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// File mode creation mask.
    pub umask: Option<u32>,
    /// Capabilities; `None` keeps what the init has (all, as root).
    pub capabilities: Option<CapSets>,
    /// `PR_SET_NO_NEW_PRIVS`.
    pub no_new_privileges: bool,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
    /// `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// `ioprio_set(IOPRIO_WHO_PROCESS, 0, value)`: `class << 13 | level`.
    #[serde(default)]
    pub io_priority: Option<u32>,
    /// `sched_setattr(0, attr, 0)` for `process.scheduler`.
    #[serde(default)]
    pub scheduler: Option<SchedAttr>,
    /// `process.execCPUAffinity`: honoured for a process started by `exec`
    /// only (the spec: "not applicable to the container's init process").
    #[serde(default)]
    pub exec_cpu_affinity: Option<CpuAffinity>,
}

/// CPU affinities of an exec'd process, as CPU numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuAffinity {
    /// Set by the runtime on the new init before it joins the container's
    /// cgroups (`sched_setaffinity(pid, ..)`).
    pub initial: Option<Vec<u32>>,
    /// Set by the init just before `execve`; `None` means every possible
    /// CPU, which the kernel narrows to the cgroup's cpuset (the spec: the
    /// container's default affinity).
    pub final_cpus: Option<Vec<u32>>,
}

/// `set_mempolicy(mode | flags, nodemask, maxnode)` for
/// `linux.memoryPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemPolicy {
    /// `MPOL_*` mode number.
    pub mode: u32,
    /// `MPOL_F_*` mode flag bits.
    pub flags: u32,
    /// NUMA node numbers (empty for `MPOL_DEFAULT`, `MPOL_LOCAL`).
    pub nodes: Vec<u32>,
}

/// The fields of `struct sched_attr` (sched_setattr(2)) the OCI
/// `process.scheduler` object sets; the init fills in `size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedAttr {
    /// `SCHED_OTHER` 0, `SCHED_FIFO` 1, `SCHED_RR` 2, `SCHED_BATCH` 3,
    /// `SCHED_IDLE` 5, `SCHED_DEADLINE` 6.
    pub policy: u32,
    /// `SCHED_FLAG_*` bits.
    pub flags: u64,
    /// Nice value (-20..=19), for `SCHED_OTHER` and `SCHED_BATCH`.
    pub nice: i32,
    /// Static priority (1..=99 for `SCHED_FIFO` and `SCHED_RR`, else 0).
    pub priority: u32,
    /// `SCHED_DEADLINE` runtime, in nanoseconds.
    pub runtime: u64,
    /// `SCHED_DEADLINE` deadline, in nanoseconds.
    pub deadline: u64,
    /// `SCHED_DEADLINE` period, in nanoseconds.
    pub period: u64,
}

/// Everything the init needs to set up one container and exec its process.
///
/// Built by the runtime from the OCI config; the init applies it in order
/// and decides nothing on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitSpec {
    /// Container id, for logs.
    pub container_id: String,
    /// Host path of the rootfs (absolute).
    pub rootfs: RawPath,
    /// Propagation applied recursively to `/` first (`MS_SLAVE | MS_REC`
    /// by default, or the spec's `rootfsPropagation`).
    pub root_propagation: u64,
    /// Remount the root read-only after pivoting.
    pub readonly_root: bool,
    /// Use `chroot` (after `MS_MOVE`) instead of `pivot_root`.
    pub no_pivot: bool,
    /// Mounts, in order.
    pub mounts: Vec<MountOp>,
    /// Device nodes to create.
    pub devices: Vec<DeviceNode>,
    /// Symlinks to create (`/dev/fd`, `/dev/stdin`, ...).
    pub symlinks: Vec<Symlink>,
    /// Paths to mask: `/dev/null` over files, an empty read-only tmpfs over
    /// directories; missing paths are skipped.
    pub masked_paths: Vec<RawPath>,
    /// Paths to remount read-only; missing paths are skipped.
    pub readonly_paths: Vec<RawPath>,
    /// UTS hostname.
    pub hostname: Option<String>,
    /// UTS domain name.
    pub domainname: Option<String>,
    /// Bring `lo` up (a new network namespace was made).
    pub loopback_up: bool,
    /// `(key, value)` pairs written under `/proc/sys`.
    pub sysctls: Vec<(String, String)>,
    /// The workload.
    pub process: ProcessSpec,
    /// How the init is told to exec.
    pub start_via: StartVia,
    /// Seccomp filters to load last before `execve`.
    #[serde(default)]
    pub seccomp: Option<SeccompProgram>,
    /// OCI hooks the init takes part in; `None` when the config has none.
    #[serde(default)]
    pub hooks: Option<InitHooks>,
    /// `personality(2)` persona (`PER_LINUX` 0, `PER_LINUX32` 8) set just
    /// before `execve`; `None` leaves the init's.
    #[serde(default)]
    pub personality: Option<u32>,
    /// `set_mempolicy(2)` for `linux.memoryPolicy`, just before `execve`
    /// (the policy survives it).
    #[serde(default)]
    pub memory_policy: Option<MemPolicy>,
}

/// One OCI hook for the init to run itself (`createContainer`,
/// `startContainer`): `execve(path, args, env)` with the container state
/// JSON on stdin, killed at `timeout_secs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute path of the program.
    pub path: RawPath,
    /// `argv`, `args[0]` included (empty: `[path]`).
    pub args: Vec<RawPath>,
    /// `KEY=value` entries; the hook's whole environment.
    pub env: Vec<RawPath>,
    /// Seconds before the hook is killed; `None` waits for it.
    pub timeout_secs: Option<u64>,
    /// What to name in an error (`hooks.createContainer[0]`).
    pub field: String,
}

/// The hooks of a container, as the init sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitHooks {
    /// Send `run_hooks` after the mounts and wait for `hooks_done` before
    /// `createContainer`: the parent runs `prestart` and `createRuntime`.
    pub ask_parent: bool,
    /// Run after `run_hooks`, before `pivot_root`, in the container's
    /// namespaces (the path resolves on the host: nothing is pivoted yet).
    pub create_container: Vec<Hook>,
    /// Run after the start signal, before the workload's `execve`; the path
    /// resolves inside the container.
    pub start_container: Vec<Hook>,
    /// The state JSON (`status: creating`) for `createContainer`.
    pub creating_state: String,
    /// The state JSON (`status: created`) for `startContainer`.
    pub created_state: String,
}

/// Seccomp filters, compiled by the runtime: the init loads each with
/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`, in order. With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` (8) in `flags` there is exactly one
/// filter, and the init sends the listener fd it returns as
/// [`ToParent::SeccompListener`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram {
    /// `SECCOMP_FILTER_FLAG_*` bits, for every filter.
    pub flags: u32,
    /// Each a classic BPF program: one `struct sock_filter` per `u64`
    /// (`code | jt << 16 | jf << 24 | k << 32`).
    pub filters: Vec<Vec<u64>>,
}

/// The setup step an init error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Reading or writing the init socket.
    Protocol,
    /// Root propagation and the rootfs bind.
    Rootfs,
    /// The spec's mounts.
    Mounts,
    /// Device nodes and symlinks.
    Dev,
    /// The console (pty).
    Console,
    /// Loopback up in a new network namespace.
    Network,
    /// `pivot_root` or the `chroot` fallback.
    PivotRoot,
    /// Masked paths.
    MaskedPaths,
    /// Read-only paths and a read-only root.
    ReadonlyPaths,
    /// Hostname and domain name.
    Hostname,
    /// sysctls.
    Sysctl,
    /// Resource limits.
    Rlimits,
    /// `oom_score_adj`.
    OomScoreAdj,
    /// Working directory.
    Cwd,
    /// uid, gid, supplementary groups, umask.
    User,
    /// Capability sets.
    Capabilities,
    /// `no_new_privileges`.
    NoNewPrivs,
    /// Closing inherited fds.
    CloseFds,
    /// Resolving `args[0]` before `Ready`.
    Resolve,
    /// Waiting for the start signal.
    WaitStart,
    /// `execve` of the workload.
    Exec,
    /// The init panicked.
    Panic,
    /// Loading the seccomp filters.
    Seccomp,
    /// Exec mode: joining the target's namespaces (`setns`) and root.
    Join,
    /// Exec mode: `clone3(CLONE_PARENT)` of the process inside the target's
    /// pid namespace.
    Spawn,
    /// OCI hooks the init runs (`createContainer`, `startContainer`) or
    /// waits for (`run_hooks`).
    Hooks,
    /// `personality(2)`.
    Personality,
    /// `ioprio_set(2)` for `process.ioPriority`.
    IoPriority,
    /// `sched_setattr(2)` for `process.scheduler`.
    Scheduler,
    /// `set_mempolicy(2)` for `linux.memoryPolicy`.
    MemoryPolicy,
    /// `sched_setaffinity(2)` for `process.execCPUAffinity.final`.
    CpuAffinity,
    /// Joining the container's v1 cgroup (sync 0b, or a resident init's clone).
    Cgroup,
    /// A step this build does not know (sent by a newer init).
    #[serde(other)]
    Unknown,
}

impl Step {
    /// The snake_case name used on the wire and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Protocol => "protocol",
            Step::Rootfs => "rootfs",
            Step::Mounts => "mounts",
            Step::Dev => "dev",
            Step::Console => "console",
            Step::Network => "network",
            Step::PivotRoot => "pivot_root",
            Step::MaskedPaths => "masked_paths",
            Step::ReadonlyPaths => "readonly_paths",
            Step::Hostname => "hostname",
            Step::Sysctl => "sysctl",
            Step::Rlimits => "rlimits",
            Step::OomScoreAdj => "oom_score_adj",
            Step::Cwd => "cwd",
            Step::User => "user",
            Step::Capabilities => "capabilities",
            Step::NoNewPrivs => "no_new_privs",
            Step::CloseFds => "close_fds",
            Step::Resolve => "resolve",
            Step::WaitStart => "wait_start",
            Step::Exec => "exec",
            Step::Panic => "panic",
            Step::Seccomp => "seccomp",
            Step::Join => "join",
            Step::Spawn => "spawn",
            Step::Hooks => "hooks",
            Step::Personality => "personality",
            Step::IoPriority => "io_priority",
            Step::Scheduler => "scheduler",
            Step::MemoryPolicy => "memory_policy",
            Step::CpuAffinity => "cpu_affinity",
            Step::Cgroup => "cgroup",
            Step::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure inside the init, as data: the runtime matches on `step` and
/// `errno` and never parses `message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitError {
    /// The step that failed.
    pub step: Step,
    /// The path it was acting on, if any (raw bytes).
    pub path: Option<RawPath>,
    /// Raw errno; unknown numbers still decode.
    pub errno: Option<i32>,
    /// Rendered cause chain, for humans only.
    pub message: String,
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "init step {}", self.step)?;
        if let Some(path) = &self.path {
            write!(f, " on {:?}", path.as_path())?;
        }
        // The message is the rendered chain and already names the errno.
        match (self.message.is_empty(), self.errno) {
            (false, _) => write!(f, ": {}", self.message),
            // Errno only names values the kernel can return (1..4096).
            (true, Some(errno)) if (1..4096).contains(&errno) => {
                write!(f, ": {}", rustix::io::Errno::from_raw_os_error(errno))
            }
            (true, Some(errno)) => write!(f, ": errno {errno}"),
            (true, None) => Ok(()),
        }
    }
}

impl std::error::Error for InitError {}

/// Severity of a [`LogRecord`], mirroring `tracing`'s levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Degraded paths.
    Warn,
    /// Lifecycle.
    Info,
    /// Each step.
    Debug,
    /// Fine detail.
    Trace,
}

/// An event the init wants logged in the container's span.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The step it belongs to.
    pub step: Step,
    /// Constant message.
    pub message: String,
    /// Path the step was acting on, if any.
    pub path: Option<RawPath>,
}

/// What an init in exec mode needs to start one more process in a running
/// container (the body of `exec`; the target's pidfd travels with it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Container id, for logs.
    pub container_id: String,
    /// Host pid of the container's process: the init opens
    /// `/proc/<pid>/root` and checks, through the pidfd, that the pid still
    /// names that process.
    pub target_pid: i32,
    /// `CLONE_NEW*` bits of the namespaces to join with one
    /// `setns(pidfd, ..)`.
    pub namespaces: u64,
    /// The process to start.
    pub process: ProcessSpec,
    /// Set `PR_SET_PDEATHSIG(SIGKILL)` on the new process.
    #[serde(default)]
    pub kill_on_parent_death: bool,
    /// The container's seccomp filter, loaded into this process too (at
    /// the same point as for the container's first process).
    #[serde(default)]
    pub seccomp: Option<SeccompProgram>,
}

/// The body of `exec_pid`: the process an init in exec mode started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecPid {
    /// Its pid in the runtime's pid namespace.
    pub pid: i32,
}

/// Messages from the runtime to the init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToInit {
    /// The init spec. Carries 0 fds, or 1 (the start FIFO, `O_PATH`) when
    /// `start_via` is [`StartVia::Fifo`].
    Spec(Box<InitSpec>),
    /// Exec now. No fds.
    Start,
    /// Exec mode: start a process in a running container. Exactly 1 fd,
    /// the pidfd of the container's process.
    Exec(Box<ExecSpec>),
    /// Exec now, with these arguments and environment instead of the
    /// spec's (a warm pool's container handed out for a job). No fds.
    StartWith(Box<ProcessOverride>),
    /// The parent ran the `prestart` and `createRuntime` hooks; go on. No
    /// fds.
    HooksDone,
    /// A detached mount for a [`MountOp`] with `detached` set. Exactly 1
    /// fd, from `open_tree(OPEN_TREE_CLONE)`. Sent right after `Spec`, one
    /// per such op, in op order.
    MountFd(MountFd),
    /// Resident mode: clone a container's init (see [`SpawnRequest`] for
    /// its fds). Answered with `ExecPid` and the new process's pidfd, or
    /// an `Error`.
    Spawn(SpawnRequest),
    /// Sync 0b, before `Spec`: join the container's cgroup, made while
    /// this init started. Its fds (up to [`MAX_FDS`](crate::MAX_FDS), or
    /// none when no cgroup could be made) are v1 `tasks` files, open for
    /// writing: the init writes `0` to each, then unshares its cgroup
    /// namespace if asked. Sent at most once, and only to an init cloned
    /// outside its cgroup.
    JoinCgroup(JoinCgroup),
}

/// The body of `join_cgroup`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCgroup {
    /// `unshare(CLONE_NEWCGROUP)` once placed, so that the namespace's
    /// root is the container's cgroup.
    pub unshare_namespace: bool,
}

/// The body of `spawn`: how the resident init clones a container's init.
/// Its fds, in order: the new init's socket (its fd 3), one per `true` in
/// `stdio` (its fds 0-2, in order), then `cgroup_fds` cgroup fds: v1
/// `tasks` files the child writes `0` to, or, with `cgroup_dir`, the one
/// v2 directory it is cloned into; last, with `wait_for_maps`, the read
/// end of the pipe the child waits on for its user namespace's maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnRequest {
    /// `CLONE_NEW*` bits.
    pub clone_flags: u64,
    /// Which of fds 0-2 come with the request (the others stay the
    /// resident init's, `/dev/null`).
    pub stdio: [bool; 3],
    /// How many cgroup fds follow.
    pub cgroup_fds: u32,
    /// The one cgroup fd is a v2 directory for `CLONE_INTO_CGROUP`.
    pub cgroup_dir: bool,
    /// `unshare(CLONE_NEWCGROUP)` once placed.
    pub unshare_cgroupns: bool,
    /// `PR_SET_PDEATHSIG` `SIGKILL`.
    pub kill_on_parent_death: bool,
    /// A new user namespace: wait for one byte on the last fd (the
    /// runtime has written the maps), then become its root.
    #[serde(default)]
    pub wait_for_maps: bool,
}

/// The body of `mount_fd`: which op of [`InitSpec::mounts`] the fd is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountFd {
    /// Index into [`InitSpec::mounts`].
    pub mount: u32,
}

/// What a [`ToInit::StartWith`] replaces in the spec's process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessOverride {
    /// New `argv` (resolved through the `PATH` in the effective env).
    pub args: Vec<RawPath>,
    /// New environment; `None` keeps the spec's.
    pub env: Option<Vec<RawPath>>,
}

/// Messages from the init to the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToParent {
    /// Setup is done; waiting for the start signal. No fds.
    Ready,
    /// Setup or exec failed; the init exits after sending it. No fds.
    Error(InitError),
    /// A log event. No fds.
    Log(LogRecord),
    /// The console's pty master. Exactly 1 fd.
    Console,
    /// Exec mode: the new process exists. Exactly 1 fd, its pidfd.
    ExecPid(ExecPid),
    /// The mounts are done: run the `prestart` and `createRuntime` hooks
    /// and answer `hooks_done`. No fds.
    RunHooks,
    /// The seccomp user-notification fd of the filter just loaded
    /// (`SECCOMP_FILTER_FLAG_NEW_LISTENER`), for the runtime to pass on to
    /// the agent at `linux.seccomp.listenerPath`. Exactly 1 fd. No answer:
    /// the init goes on at once.
    SeccompListener,
    /// The rootfs is bound (sent only when the spec has detached mounts):
    /// the runtime may now make the detached trees it builds while the
    /// init works, whose mounts then come after the container's root in
    /// its mount table. No fds. No answer.
    RootfsReady,
}
