//! Lays out root filesystems for test and bench containers.
//!
//! A rootfs here is a plain directory tree: empty mount points (`proc`,
//! `sys`, `dev`, `dev/pts`, `dev/shm`, `tmp`), a few files in `etc`, and
//! static binaries in `bin` plus `/probe`. Mounting over the mount points is
//! the runtime's job, not this module's.
//!
//! Every file and symlink is written under a temporary name and renamed into
//! place, so building is idempotent and never exposes a half-written binary,
//! and rebuilding over a binary that a container is running does not fail
//! with ETXTBSY. Nothing here is global except [`shared_rootfs`], so builds
//! into different directories can run concurrently.

use std::fmt;
use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{BINS, BUILD_ID, bin_path, is_statically_linked};

/// Where Debian's `busybox-static` package installs busybox.
pub const BUSYBOX: &str = "/bin/busybox";

/// Directories of every rootfs, parents first, with their modes.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("proc", 0o755),
    ("sys", 0o755),
    ("dev", 0o755),
    ("dev/pts", 0o755),
    ("dev/shm", 0o755),
    ("tmp", 0o1777),
    ("etc", 0o755),
    ("root", 0o755),
];

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";

const GROUP: &str = "\
root:x:0:
nobody:x:65534:
";

/// Builds the standard test rootfs in `dir`, creating `dir` if needed:
///
/// - `bin/`, `proc/`, `sys/`, `dev/`, `dev/pts/`, `dev/shm/`, `etc/`,
///   `root/` with mode 0755 and `tmp/` with mode 1777 (and `dir` itself 0755);
/// - every binary of [`BINS`] as `bin/<name>`, mode 0755, and `probe` also as
///   `/probe`;
/// - `etc/passwd` and `etc/group` with root (0) and nobody (65534), and an
///   empty `etc/hostname`.
///
/// Idempotent: building again over an existing rootfs replaces the files.
///
/// # Errors
///
/// The first filesystem error, with the operation and path in its message.
pub fn build_rootfs(dir: &Path) -> io::Result<()> {
    create_layout(dir)?;
    for name in BINS {
        install_copy(bin_path(name), &dir.join("bin").join(name), 0o755)?;
    }
    install_copy(bin_path("probe"), &dir.join("probe"), 0o755)
}

/// Builds a rootfs in `dir` with the same directories and `etc` files as
/// [`build_rootfs`], but with Debian's static busybox as `bin/busybox` and a
/// `bin/<applet> -> busybox` symlink for every applet it lists (`sh`
/// included). Our `probe` is at `/probe`; the other test binaries are not
/// installed, since busybox provides them.
///
/// # Errors
///
/// `NotFound`, saying how to install it, if [`BUSYBOX`] is missing;
/// `InvalidData` if it is dynamically linked (it would not run without a
/// libc in the rootfs) or does not list `sh`; otherwise the first
/// filesystem error.
pub fn build_busybox_rootfs(dir: &Path) -> io::Result<()> {
    let busybox = Path::new(BUSYBOX);
    let applets = busybox_applets(busybox)?;
    create_layout(dir)?;
    install_copy(busybox, &dir.join("bin/busybox"), 0o755)?;
    for applet in &applets {
        install_symlink(Path::new("busybox"), &dir.join("bin").join(applet))?;
    }
    install_copy(bin_path("probe"), &dir.join("probe"), 0o755)
}

/// A rootfs built by [`build_rootfs`] once per process and per build of
/// these binaries, under `$TMPDIR/corral-testbins-<uid>-<build id>`.
///
/// It is built under a temporary name and renamed into place, so other
/// processes (parallel test binaries) never see a half-built tree; the
/// first one to rename wins and the others use its tree. Treat it as
/// read-only: many containers use it at once. Trees of older builds are
/// left for the OS's temp cleaning.
///
/// # Panics
///
/// If the rootfs cannot be built, or the directory exists but belongs to
/// another user.
pub fn shared_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        create_shared_rootfs().unwrap_or_else(|e| panic!("build shared test rootfs: {e:?}"))
    })
}

fn create_shared_rootfs() -> io::Result<PathBuf> {
    // /proc/self is owned by the process's euid.
    let uid = fs::metadata("/proc/self")
        .map_err(context("stat", Path::new("/proc/self")))?
        .uid();
    let name = format!("corral-testbins-{uid}-{BUILD_ID}");
    let final_dir = std::env::temp_dir().join(&name);
    if !final_dir.exists() {
        let tmp = temp_sibling(&final_dir);
        let built = build_rootfs(&tmp).and_then(|()| rename_dir(&tmp, &final_dir));
        if built.is_err() || tmp.exists() {
            // Lost the race (or failed): another process's tree is in place.
            let _ = fs::remove_dir_all(&tmp);
        }
        built?;
    }
    check_owner(&final_dir, uid)?;
    Ok(final_dir)
}

/// Renames `tmp` to `dest`; a non-empty `dest` (another process won the
/// race) counts as success and leaves `tmp` in place for the caller.
fn rename_dir(tmp: &Path, dest: &Path) -> io::Result<()> {
    const EEXIST: i32 = 17;
    const ENOTEMPTY: i32 = 39;
    match fs::rename(tmp, dest) {
        Err(e) if matches!(e.raw_os_error(), Some(EEXIST | ENOTEMPTY)) => Ok(()),
        other => other.map_err(context("rename into place", dest)),
    }
}

/// A predictable name in a shared temp dir could have been made by someone
/// else; refuse to run containers from a tree we do not own.
fn check_owner(dir: &Path, uid: u32) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(context("stat", dir))?;
    if meta.is_dir() && meta.uid() == uid {
        return Ok(());
    }
    let msg = format!("{dir:?} is not a directory owned by uid {uid}; remove it");
    Err(io::Error::new(io::ErrorKind::PermissionDenied, msg))
}

/// Applet names from `busybox --list`, after checking busybox is usable.
fn busybox_applets(busybox: &Path) -> io::Result<Vec<String>> {
    if !busybox.exists() {
        let msg = format!(
            "{busybox:?} not found: install Debian's busybox-static (apt-get install busybox-static)"
        );
        return Err(io::Error::new(io::ErrorKind::NotFound, msg));
    }
    if !is_statically_linked(busybox)? {
        let msg = format!(
            "{busybox:?} is dynamically linked: install Debian's busybox-static (apt-get install busybox-static)"
        );
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(context("run --list", busybox))?;
    if !output.status.success() {
        let msg = format!("{busybox:?} --list: {}", output.status);
        return Err(io::Error::other(msg));
    }
    let applets: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/') && !a.starts_with('.'))
        .map(String::from)
        .collect();
    if !applets.iter().any(|a| a == "sh") {
        let msg = format!("{busybox:?} --list has no sh applet");
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    Ok(applets)
}

fn create_layout(dir: &Path) -> io::Result<()> {
    create_dir(dir, 0o755)?;
    for (sub, mode) in DIRS {
        create_dir(&dir.join(sub), *mode)?;
    }
    let etc = dir.join("etc");
    install_contents(PASSWD.as_bytes(), &etc.join("passwd"), 0o644)?;
    install_contents(GROUP.as_bytes(), &etc.join("group"), 0o644)?;
    install_contents(b"", &etc.join("hostname"), 0o644)
}

/// Creates `dir` (and parents) if missing and sets `mode` exactly: the mode
/// given to mkdir is filtered by the umask, and 1777 needs the sticky bit.
fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(context("mkdir", dir))?;
    fs::set_permissions(dir, Permissions::from_mode(mode)).map_err(context("chmod", dir))
}

fn install_copy(src: &Path, dest: &Path, mode: u32) -> io::Result<()> {
    install(dest, mode, |tmp| {
        fs::copy(src, tmp).map(drop).map_err(context("copy", src))
    })
}

fn install_contents(contents: &[u8], dest: &Path, mode: u32) -> io::Result<()> {
    install(dest, mode, |tmp| {
        fs::write(tmp, contents).map_err(context("write", tmp))
    })
}

/// Writes a file through `write` under a temporary name next to `dest`,
/// sets its mode and renames it over `dest`.
fn install(dest: &Path, mode: u32, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let tmp = temp_sibling(dest);
    let result = write(&tmp)
        .and_then(|()| {
            fs::set_permissions(&tmp, Permissions::from_mode(mode)).map_err(context("chmod", &tmp))
        })
        .and_then(|()| fs::rename(&tmp, dest).map_err(context("rename into place", dest)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn install_symlink(target: &Path, link: &Path) -> io::Result<()> {
    if fs::read_link(link).is_ok_and(|existing| existing == target) {
        return Ok(());
    }
    let tmp = temp_sibling(link);
    let result = std::os::unix::fs::symlink(target, &tmp)
        .map_err(context("symlink", &tmp))
        .and_then(|()| fs::rename(&tmp, link).map_err(context("rename into place", link)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `.<name>.tmp-<pid>-<n>` next to `path`: unique across the threads and
/// processes that may be installing the same path at once.
fn temp_sibling(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .expect("install paths end in a file name")
        .to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// An io error with the operation and path it failed on. The cause stays
/// reachable through `source()` rather than being copied into the message.
#[derive(Debug)]
struct PathError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.op, self.path)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn context(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let path = path.to_path_buf();
    move |source| io::Error::new(source.kind(), PathError { op, path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_siblings_are_hidden_and_unique() {
        let a = temp_sibling(Path::new("/x/bin/probe"));
        let b = temp_sibling(Path::new("/x/bin/probe"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x/bin")));
        assert!(
            a.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".probe.tmp-")
        );
    }

    #[test]
    fn path_error_keeps_cause_as_source() {
        let err = context("copy", Path::new("/a"))(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "copy \"/a\"");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn dirs_list_parents_before_children() {
        for (i, (sub, _)) in DIRS.iter().enumerate() {
            if let Some((parent, _)) = sub.rsplit_once('/') {
                assert!(
                    DIRS[..i].iter().any(|(d, _)| *d == parent),
                    "{sub} before {parent}"
                );
            }
        }
    }
}
