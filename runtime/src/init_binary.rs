//! Where `corral-init` comes from: the static binary embedded at build
//! time (see `build.rs`), copied once per [`Runtime`](crate::Runtime) into a
//! sealed memfd, or a file named by the caller.
//!
//! Executing the init from a sealed memfd means a container can never reach
//! the binary through `/proc/self/exe` and overwrite it (CVE-2019-5736): the
//! seals forbid every write, and the file lives in no filesystem.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{MemfdFlags, SealFlags};

use crate::error::{Error, Result};

/// The init binary as built with this crate.
static EMBEDDED: &[u8] = include_bytes!(env!("CORRAL_INIT_EMBED"));

/// An executable `corral-init`, ready for every container of a runtime.
#[derive(Debug)]
pub(crate) enum InitBinary {
    /// A sealed memfd holding the binary.
    Sealed(OwnedFd),
    /// A file on the host, as the caller asked.
    File(CString),
}

impl InitBinary {
    /// Seals the embedded binary into a memfd.
    pub(crate) fn embedded() -> Result<Self> {
        seal(EMBEDDED).map(InitBinary::Sealed)
    }

    /// Uses the binary at `path`, copied into a sealed memfd when `copy`.
    pub(crate) fn from_path(path: &Path, copy: bool) -> Result<Self> {
        if copy {
            let bytes = std::fs::read(path).map_err(|source| Error::InitBinary {
                path: path.to_path_buf(),
                source,
            })?;
            return seal(&bytes).map(InitBinary::Sealed);
        }
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InitBinary {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        Ok(InitBinary::File(c))
    }

    /// How the cloned child execs it.
    pub(crate) fn exec(&self) -> crate::sys::InitExec<'_> {
        match self {
            InitBinary::Sealed(fd) => crate::sys::InitExec::Fd(fd.as_fd()),
            InitBinary::File(path) => crate::sys::InitExec::Path(path),
        }
    }
}

/// `memfd_create` + write + `F_SEAL_*`: an immutable in-memory executable.
fn seal(bytes: &[u8]) -> Result<OwnedFd> {
    let wrap = |source: rustix::io::Errno| Error::InitBinary {
        path: PathBuf::from("memfd:corral-init"),
        source: source.into(),
    };
    let fd = rustix::fs::memfd_create(
        "corral-init",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(wrap)?;
    let mut written = 0;
    while written < bytes.len() {
        written += rustix::io::write(&fd, &bytes[written..]).map_err(wrap)?;
    }
    rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o555)).map_err(wrap)?;
    // FUTURE_WRITE rather than WRITE: both refuse every later write, but
    // WRITE also waits for page references to drain and intermittently
    // fails with EBUSY right after the pages were written. Nothing maps
    // this memfd writable, so the weaker-sounding seal loses nothing.
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::FUTURE_WRITE,
    )
    .map_err(wrap)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_init_is_a_static_elf() {
        assert_eq!(&EMBEDDED[..4], b"\x7fELF");
        assert!(EMBEDDED.len() > 1024);
    }

    #[test]
    fn sealed_memfd_refuses_writes() {
        let bin = InitBinary::embedded().unwrap();
        let InitBinary::Sealed(fd) = &bin else {
            panic!("the embedded init is sealed")
        };
        assert_eq!(
            rustix::io::pwrite(fd, b"x", 0).unwrap_err(),
            rustix::io::Errno::PERM
        );
    }
}
