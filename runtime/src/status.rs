//! How a container's process ended.

use std::fmt;

/// Exit status of a container's process: an exit code or a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    code: Option<i32>,
    signal: Option<i32>,
    core_dumped: bool,
}

impl ExitStatus {
    pub(crate) fn from_code(code: i32) -> Self {
        ExitStatus {
            code: Some(code),
            signal: None,
            core_dumped: false,
        }
    }

    pub(crate) fn from_signal(signal: i32, core_dumped: bool) -> Self {
        ExitStatus {
            code: None,
            signal: Some(signal),
            core_dumped,
        }
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
                Ok(())
            }
            (None, None) => f.write_str("unknown status"),
        }
    }
}
