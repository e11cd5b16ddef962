//! Where `corral-init` comes from: the static binary embedded at build
//! time (see `build.rs`), copied once per [`Runtime`](crate::Runtime) into a
//! sealed memfd, or a file named by the caller.
//!
//! Executing the init from a sealed memfd means a container can never reach
//! the binary through `/proc/self/exe` and overwrite it (CVE-2019-5736): the
//! seals forbid every write, and the file lives in no filesystem.
//!
//! The copy costs about 0.8 ms (1.7 MB of page-cache writes), once per
//! `Runtime`: nothing for a service, but a third of what a one-container
//! process such as the CLI does. For those, [`InitBinary::cached`] keeps
//! the embedded binary as a file in a root-only directory, written once,
//! and execs it through a private read-only mount of that one file
//! (`open_tree(OPEN_TREE_CLONE)` + `MOUNT_ATTR_RDONLY`, never attached
//! anywhere): `/proc/self/exe` of the init then resolves through that
//! mount, and opening it for writing fails with `EROFS`.

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
    /// The cached file, through a private read-only mount of it.
    ReadOnlyMount(OwnedFd),
}

impl InitBinary {
    /// Seals the embedded binary into a memfd.
    pub(crate) fn embedded() -> Result<Self> {
        seal(EMBEDDED).map(InitBinary::Sealed)
    }

    /// The embedded binary as a file in `dir` (created 0700 if missing),
    /// executed through a private read-only mount; sealed into a memfd as
    /// [`embedded`](Self::embedded) does when that cannot be done (no
    /// `CAP_SYS_ADMIN` for `open_tree`, a directory or file that is not
    /// ours alone, a kernel without the new mount API).
    pub(crate) fn cached(dir: &Path) -> Result<Self> {
        match cache::open(dir, EMBEDDED, env!("CORRAL_INIT_ID")) {
            Ok(fd) => Ok(InitBinary::ReadOnlyMount(fd)),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "init cache unusable, sealing a copy");
                Self::embedded()
            }
        }
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
            InitBinary::Sealed(fd) | InitBinary::ReadOnlyMount(fd) => {
                crate::sys::InitExec::Fd(fd.as_fd())
            }
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

/// The file cache behind [`InitBinary::cached`].
mod cache {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::path::Path;

    use rustix::fs::{AtFlags, Mode, OFlags};
    use rustix::mount::OpenTreeFlags;

    /// `MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV`.
    const READ_ONLY: u64 = 0x1 | 0x2 | 0x4;

    fn refuse(what: String) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, what)
    }

    /// The cached copy of `bytes` in `dir`, named after `id`, as an fd of
    /// a detached read-only mount of it.
    pub(super) fn open(dir: &Path, bytes: &[u8], id: &str) -> io::Result<OwnedFd> {
        match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let dirfd = rustix::fs::open(
            dir,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let me = rustix::process::geteuid().as_raw();
        let st = rustix::fs::fstat(&dirfd)?;
        if st.st_uid != me || st.st_mode & 0o022 != 0 {
            return Err(refuse(format!(
                "{dir:?} is not writable by its owner alone"
            )));
        }
        let name = format!("corral-init-{id}");
        let file = match rustix::fs::openat(
            &dirfd,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => write(&dirfd, &name, bytes)?,
            Err(e) => return Err(e.into()),
        };
        let st = rustix::fs::fstat(&file)?;
        let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
        if !regular
            || st.st_uid != me
            || st.st_mode & 0o222 != 0
            || st.st_size != bytes.len() as i64
        {
            return Err(refuse(format!(
                "{dir:?}/{name} is not the expected read-only file"
            )));
        }
        let tree = rustix::mount::open_tree(
            &file,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH,
        )?;
        crate::sys::mount_set_attrs(tree.as_fd(), READ_ONLY)?;
        Ok(tree)
    }

    /// Writes `bytes` as an unnamed file in `dirfd`, then links it as
    /// `name`, so no reader ever sees it half written. Another process
    /// may win the race to link; its file is as good.
    fn write(dirfd: &OwnedFd, name: &str, bytes: &[u8]) -> io::Result<OwnedFd> {
        let tmp = rustix::fs::openat(
            dirfd,
            ".",
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o500),
        )?;
        let mut written = 0;
        while written < bytes.len() {
            written += rustix::io::write(&tmp, &bytes[written..])?;
        }
        rustix::fs::fchmod(&tmp, Mode::from_raw_mode(0o500))?;
        match rustix::fs::linkat(&tmp, "", dirfd, name, AtFlags::EMPTY_PATH) {
            Ok(()) => remove_others(dirfd, name),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(rustix::fs::openat(
            dirfd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Removes the cached inits of other builds from the directory. A
    /// process still running one holds it through its mount, which
    /// outlives the name.
    fn remove_others(dirfd: &OwnedFd, keep: &str) {
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dirfd.as_raw_fd())) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("corral-init-") && name != keep {
                let _ = rustix::fs::unlinkat(dirfd, name.as_ref(), AtFlags::empty());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_init_is_a_static_elf() {
        assert_eq!(&EMBEDDED[..4], b"\x7fELF");
        assert!(EMBEDDED.len() > 1024);
    }

    /// The cached init is written once, reused, and cannot be written
    /// through the fd the child execs (the CVE-2019-5736 path): as root the
    /// read-only mount refuses with `EROFS`.
    #[test]
    fn cached_init_is_reused_and_read_only_through_its_mount() {
        let dir = std::env::temp_dir().join(format!("corral-init-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("corral-init-an-older-build"), b"old").unwrap();
        std::fs::write(dir.join("unrelated"), b"kept").unwrap();
        let bin = InitBinary::cached(&dir).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                format!("corral-init-{}", env!("CORRAL_INIT_ID")),
                "unrelated".into()
            ],
            "one cached init, an older build's removed, other files left"
        );
        let again = InitBinary::cached(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        if rustix::process::geteuid().is_root() {
            for b in [&bin, &again] {
                let InitBinary::ReadOnlyMount(fd) = b else {
                    panic!("as root the cache is used: {b:?}")
                };
                let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
                let err = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
                let exe = std::fs::read(&path).unwrap();
                assert_eq!(exe, EMBEDDED);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The init's own fd survives the child's fd placement even when it
    /// is fd 3, the socket's target: a memfd sealed while fd 3 was free.
    /// That happened in the test suite now and then (the child exited with
    /// EACCES: it exec'd the socket). Run in a fresh copy of this test
    /// binary, where fd 3 is the lowest free fd, so the memfd lands there.
    #[test]
    fn an_init_memfd_at_the_socket_target_fd_still_execs() {
        const CHILD: &str = "CORRAL_TEST_INIT_AT_FD_3";
        let name = "init_binary::tests::an_init_memfd_at_the_socket_target_fd_still_execs";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let bin = InitBinary::embedded().unwrap();
        let InitBinary::Sealed(memfd) = &bin else {
            panic!("the embedded init is sealed")
        };
        assert_eq!(
            std::os::fd::AsRawFd::as_raw_fd(memfd),
            3,
            "the scenario needs the memfd at fd 3"
        );
        let (parent_end, child_end) = corral_protocol::socketpair().unwrap();
        let argv = [c"corral-init".as_ptr(), c"3".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        let plan =
            crate::sys::ChildPlan::plain([None; 3], child_end.as_fd(), bin.exec(), &argv, &envp);
        let spawned = crate::sys::spawn_init(0, &plan).unwrap();
        drop(child_end);
        // The init finds its parent gone at its first receive and exits 1;
        // a child that never exec'd it exits with the errno (EACCES, 13).
        drop(parent_end);
        let status = rustix::process::waitid(
            rustix::process::WaitId::PidFd(spawned.pidfd.as_fd()),
            rustix::process::WaitIdOptions::EXITED,
        )
        .unwrap()
        .expect("exited");
        assert_eq!(status.exit_status(), Some(1), "{status:?}");
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
