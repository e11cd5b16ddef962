//! How a container's process ended.

use std::fmt;

/// Exit status of a container's process: an exit code or a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    code: Option<i32>,
    signal: Option<i32>,
    core_dumped: bool,
    oom_killed: bool,
}

impl ExitStatus {
    pub(crate) fn from_code(code: i32) -> Self {
        ExitStatus {
            code: Some(code),
            signal: None,
            core_dumped: false,
            oom_killed: false,
        }
    }

    pub(crate) fn from_signal(signal: i32, core_dumped: bool) -> Self {
        ExitStatus {
            code: None,
            signal: Some(signal),
            core_dumped,
            oom_killed: false,
        }
    }

    /// The same status, marked as ended by the cgroup's OOM killer.
    pub(crate) fn with_oom_killed(mut self, oom_killed: bool) -> Self {
        self.oom_killed = oom_killed;
        self
    }

    /// Whether the container's cgroup OOM-killed a process (v1
    /// `memory.oom_control`, v2 `memory.events` `oom_kill` > 0). The
    /// container's main process may have died of it (a `SIGKILL`), or
    /// exited after a child of it was killed.
    pub fn oom_killed(&self) -> bool {
        self.oom_killed
    }

    /// The exit code, if the process exited.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that killed the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// Whether the process dumped core.
    pub fn core_dumped(&self) -> bool {
        self.core_dumped
    }

    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The code a shell (and runc) reports: the exit code, or 128 + the
    /// signal number.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 255,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => {
                write!(f, "signal {signal}")?;
                if self.core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                if self.oom_killed {
                    f.write_str(" (OOM-killed)")?;
                }
                Ok(())
            }
            (None, None) => f.write_str("unknown status"),
        }
    }
}
