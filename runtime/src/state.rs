//! Containers on disk: `<root>/<id>/state.json`, the start FIFO and the
//! lock that serialises commands on one id. Used when a
//! [`Runtime`](crate::Runtime) has a state dir, which the command line
//! always has; a library user who keeps handles in memory need not pay for
//! it.
//!
//! A pid read from disk is trusted only together with the process start
//! time recorded beside it, so a recycled pid is never signalled.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::process::{Pid, PidfdFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the FIFO `start` opens to release a created container.
pub(crate) const FIFO: &str = "exec.fifo";
const STATE: &str = "state.json";

/// What corral records about a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredState {
    /// Container id.
    pub id: String,
    /// Host pid of the container's process.
    pub pid: i32,
    /// The process's start time (`/proc/<pid>/stat` field 22, clock ticks
    /// since boot): with `pid`, it identifies the process.
    pub start_time: u64,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Rootfs directory.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Whether `start` has released the process.
    pub started: bool,
    /// The config's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup, if it has one.
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::CgroupPaths>,
    /// The config's hooks, for `poststart` (at `start`) and `poststop` (at
    /// `delete`).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's seccomp filter, for the processes `exec` starts.
    #[serde(default)]
    pub seccomp: Option<StoredSeccomp>,
}

/// A container's compiled seccomp filter, loaded again into every process
/// `exec` starts in it, as runc does; with NOTIFY rules each such process
/// gets its own listener fd, sent to the same agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSeccomp {
    /// The program and its `SECCOMP_FILTER_FLAG_*` bits.
    pub program: corral_protocol::SeccompProgram,
    /// `linux.seccomp.listenerPath`, with NOTIFY rules.
    pub listener_path: Option<PathBuf>,
    /// `linux.seccomp.listenerMetadata`.
    #[serde(default)]
    pub listener_metadata: String,
}

/// Lifecycle status, as the OCI runtime spec names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, waiting for `start`.
    Created,
    /// Running the user's process.
    Running,
    /// Running, with every process frozen by the cgroup freezer (`pause`).
    Paused,
    /// The process has exited.
    Stopped,
}

impl Status {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state directory (`--root`).
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: PathBuf) -> Self {
        StateDir { root }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes `<root>/<id>`; an existing one means the id is taken.
    pub fn create(&self, id: &str) -> Result<PathBuf> {
        fs::create_dir_all(&self.root).map_err(|source| state_err(&self.root, source))?;
        let dir = self.dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(Error::Exists { id: id.to_owned() })
            }
            Err(source) => Err(state_err(&dir, source)),
        }
    }

    /// Makes the start FIFO and opens it `O_PATH` for the init.
    pub fn make_fifo(&self, id: &str) -> Result<OwnedFd> {
        let path = self.dir(id).join(FIFO);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o622),
            0,
        )
        .map_err(|e| state_err(&path, e.into()))?;
        rustix::fs::open(&path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| state_err(&path, e.into()))
    }

    /// Writes `state.json` atomically (temp file + rename).
    pub fn write(&self, state: &StoredState) -> Result<()> {
        let dir = self.dir(&state.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE);
        let json = serde_json::to_vec(state).expect("StoredState serialises");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&json)?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| state_err(&path, source))
    }

    /// Reads `state.json`; a missing dir is [`Error::NotFound`].
    pub fn read(&self, id: &str) -> Result<StoredState> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE);
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound { id: id.to_owned() },
            _ => state_err(&path, source),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| state_err(&path, io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    /// Takes the exclusive lock on `<root>/<id>`, blocking until free.
    pub fn lock(&self, id: &str) -> Result<OwnedFd> {
        validate_id(id)?;
        let dir = self.dir(id);
        let fd = rustix::fs::open(
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => Error::NotFound { id: id.to_owned() },
            e => state_err(&dir, e.into()),
        })?;
        rustix::fs::flock(&fd, FlockOperation::LockExclusive)
            .map_err(|e| state_err(&dir, e.into()))?;
        Ok(fd)
    }

    /// Removes `<root>/<id>` and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(state_err(&dir, source)),
        }
    }

    /// Ids with a state dir, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(state_err(&self.root, source)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn state_err(path: &Path, source: io::Error) -> Error {
    Error::StateDir {
        path: path.to_path_buf(),
        source,
    }
}

/// Container ids: 1 to 1024 bytes of `[A-Za-z0-9_.+-]`, not `.` or `..`,
/// so that an id is always a single safe path component.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId { id: id.to_owned() })
    }
}

/// `(state, start time)` from `/proc/<pid>/stat`: field 3 and field 22,
/// read after the last `)` since the command name may hold anything.
pub(crate) fn proc_stat(pid: i32) -> io::Result<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/<pid>/stat"))
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is `state`; start time is field 22, i.e. 19 fields further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl StoredState {
    /// The status now: stopped if the recorded process is gone, a zombie,
    /// or a different process that reused the pid; paused if its cgroup
    /// is frozen (or freezing, on v1), as runc reports it.
    pub fn status(&self) -> Status {
        match proc_stat(self.pid) {
            Ok((state, start)) if start == self.start_time && state != 'Z' && state != 'X' => {
                if !self.started {
                    Status::Created
                } else if self
                    .cgroup
                    .as_ref()
                    .is_some_and(crate::cgroups::freezer::is_frozen)
                {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    /// A pidfd for the recorded process, or `None` if it is gone. The start
    /// time is checked *after* opening, so the fd cannot refer to a process
    /// that took the pid later.
    pub fn open_pidfd(&self) -> Result<Option<OwnedFd>> {
        let Some(pid) = Pid::from_raw(self.pid) else {
            return Ok(None);
        };
        let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return Ok(None),
            Err(e) => return Err(Error::sys(format!("pidfd_open {}", self.pid), e)),
        };
        match proc_stat(self.pid) {
            Ok((state, start)) if start == self.start_time && state != 'Z' && state != 'X' => {
                Ok(Some(fd))
            }
            _ => Ok(None),
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds (the OCI state's `created`).
pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(stat), Some(('S', 98765)));
    }

    #[test]
    fn own_stat_is_readable() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        // The thread-group leader's state: the harness's main thread sleeps
        // while this test runs on another thread.
        assert!(matches!(state, 'R' | 'S'), "{state}");
        assert!(start > 0);
    }

    #[test]
    fn ids_are_single_safe_components() {
        for ok in ["a", "job-42", "x.y_z+1"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "\u{e9}"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_has_the_right_shape() {
        let s = rfc3339_now();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T");
    }

    #[test]
    fn state_round_trips_and_lists() {
        let tmp = std::env::temp_dir().join(format!("corral-state-test-{}", std::process::id()));
        let dir = StateDir::new(tmp.clone());
        dir.create("c1").unwrap();
        assert!(matches!(dir.create("c1"), Err(Error::Exists { .. })));
        let st = StoredState {
            id: "c1".into(),
            pid: i32::MAX,
            start_time: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339_now(),
            started: false,
            annotations: BTreeMap::new(),
            cgroup: None,
            hooks: None,
            seccomp: None,
        };
        dir.write(&st).unwrap();
        assert_eq!(dir.read("c1").unwrap(), st);
        assert_eq!(dir.list().unwrap(), ["c1"]);
        assert_eq!(st.status(), Status::Stopped);
        assert!(st.open_pidfd().unwrap().is_none());
        assert!(matches!(dir.read("nope"), Err(Error::NotFound { .. })));
        dir.remove("c1").unwrap();
        fs::remove_dir_all(tmp).unwrap();
    }
}
