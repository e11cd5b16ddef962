//! Step Cwd: the workload's working directory, inside the container root
//! (after pivot_root), created when missing.
//!
//! Also checks that `getcwd` names a path under the container's root: a
//! cwd reached through a leaked host fd reads `(unreachable)/...`
//! (CVE-2024-21626), and the workload must never start there.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use rustix::io::Errno;
use rustix::process::{chdir, getcwd};

use crate::error::{Error, Result, errno_of};

pub fn enter(cwd: &Path) -> Result<()> {
    let fail = |op: &'static str| {
        move |errno| Error::Cwd {
            op,
            path: cwd.to_owned(),
            errno,
        }
    };
    match chdir(cwd) {
        Err(Errno::NOENT) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(cwd)
                .map_err(|e| fail("create")(errno_of(&e)))?;
            chdir(cwd).map_err(fail("chdir"))?;
        }
        other => other.map_err(fail("chdir"))?,
    }
    let actual = getcwd(Vec::new()).map_err(fail("getcwd after chdir"))?;
    if !is_reachable(actual.as_bytes()) {
        use std::os::unix::ffi::OsStrExt;
        let cwd = std::ffi::OsStr::from_bytes(actual.as_bytes()).into();
        return Err(Error::CwdUnreachable { cwd });
    }
    Ok(())
}

/// Linux's getcwd(2) prefixes a directory outside the caller's root with
/// `(unreachable)`; only an absolute path is inside it.
pub fn is_reachable(cwd: &[u8]) -> bool {
    cwd.first() == Some(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_cwd_is_detected() {
        assert!(is_reachable(b"/"));
        assert!(is_reachable(b"/home/user"));
        assert!(!is_reachable(b"(unreachable)/sys/fs/cgroup"));
        assert!(!is_reachable(b""));
    }
}
