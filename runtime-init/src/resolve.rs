//! Step Resolve: find the workload's executable and build `execve`'s
//! arguments, before `Ready`, so that nothing is looked up or allocated
//! between the start signal and the exec.
//!
//! `args[0]` with a `/` is used as is; otherwise it is searched in the
//! `PATH` of the workload's environment (not the init's, which is empty),
//! like `execvp` would, for a regular file with an execute bit.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use corral_protocol::{ProcessOverride, ProcessSpec, RawPath};
use rustix::fs::FileType;

use crate::error::{Error, Result};
use crate::sys::ExecArgs;

const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn run(process: &ProcessSpec) -> Result<ExecArgs> {
    let arg0 = process.args.first().ok_or(Error::EmptyArgs)?.as_bytes();
    let path_var = path_var(&process.env).unwrap_or(DEFAULT_PATH);
    let program = find_program(arg0, path_var, is_executable).ok_or_else(|| Error::NotFound {
        program: PathBuf::from(OsStr::from_bytes(arg0)),
    })?;
    let program = c_string("executable path", program.as_os_str().as_bytes())?;
    let argv = c_strings("argument", &process.args)?;
    let envp = c_strings("environment entry", &process.env)?;
    Ok(ExecArgs::new(program, argv, envp))
}

/// `process` with the arguments (and env, when given) of a `StartWith`.
pub fn overridden(process: &ProcessSpec, takeover: ProcessOverride) -> ProcessSpec {
    ProcessSpec {
        args: takeover.args,
        env: takeover.env.unwrap_or_else(|| process.env.clone()),
        ..process.clone()
    }
}

/// The value of the first `PATH=` entry, as `getenv` would find it.
pub fn path_var(env: &[RawPath]) -> Option<&[u8]> {
    env.iter()
        .find_map(|entry| entry.as_bytes().strip_prefix(b"PATH="))
}

/// `arg0` itself when it contains a `/`; else the first `dir/arg0` for
/// which `is_exec` holds, over the `:`-separated `path_var` (an empty entry
/// is the current directory, as for `execvp`).
pub fn find_program(
    arg0: &[u8],
    path_var: &[u8],
    is_exec: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if arg0.is_empty() {
        return None;
    }
    if arg0.contains(&b'/') {
        // Checked here, before Ready, so that a missing program fails the
        // create rather than the start (execve still reports EACCES and
        // the like).
        let path = PathBuf::from(OsStr::from_bytes(arg0));
        return exists(&path).then_some(path);
    }
    path_var
        .split(|&b| b == b':')
        .map(|dir| {
            if dir.is_empty() {
                Path::new(".")
            } else {
                Path::new(OsStr::from_bytes(dir))
            }
        })
        .map(|dir| dir.join(OsStr::from_bytes(arg0)))
        .find(|candidate| is_exec(candidate))
}

/// Whether `path` names anything (after symlinks).
fn exists(path: &Path) -> bool {
    rustix::fs::stat(path).is_ok()
}

/// A regular file (after symlinks) with at least one execute bit.
pub fn is_executable(path: &Path) -> bool {
    rustix::fs::stat(path).is_ok_and(|st| {
        FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_mode & 0o111 != 0
    })
}

fn c_strings(what: &'static str, values: &[RawPath]) -> Result<Vec<CString>> {
    values
        .iter()
        .map(|value| c_string(what, value.as_bytes()))
        .collect()
}

fn c_string(what: &'static str, bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::NulByte {
        what,
        value: PathBuf::from(OsStr::from_bytes(bytes)),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A scratch tree under the system temp dir, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let dir =
                std::env::temp_dir().join(format!("corral-init-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("a")).unwrap();
            fs::create_dir_all(dir.join("b")).unwrap();
            Tree(dir)
        }

        fn file(&self, rel: &str, mode: u32) -> PathBuf {
            let path = self.0.join(rel);
            fs::write(&path, b"#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            path
        }

        fn path_var(&self) -> Vec<u8> {
            format!("{0}/a:{0}/b", self.0.display()).into_bytes()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn path_search_skips_non_executable_files() {
        let tree = Tree::new("skip");
        tree.file("a/tool", 0o644);
        let wanted = tree.file("b/tool", 0o755);
        assert_eq!(
            find_program(b"tool", &tree.path_var(), is_executable),
            Some(wanted)
        );
    }

    #[test]
    fn path_search_takes_the_first_match_and_skips_directories() {
        let tree = Tree::new("first");
        fs::create_dir(tree.0.join("a/dir")).unwrap();
        let first = tree.file("a/tool", 0o700);
        tree.file("b/tool", 0o755);
        tree.file("b/dir", 0o755);
        assert_eq!(
            find_program(b"tool", &tree.path_var(), is_executable),
            Some(first)
        );
        assert_eq!(
            find_program(b"dir", &tree.path_var(), is_executable),
            Some(tree.0.join("b/dir"))
        );
    }

    #[test]
    fn missing_program_is_not_found() {
        let tree = Tree::new("missing");
        tree.file("a/other", 0o755);
        assert_eq!(find_program(b"tool", &tree.path_var(), is_executable), None);
        assert_eq!(find_program(b"", &tree.path_var(), is_executable), None);
    }

    #[test]
    fn a_name_with_a_slash_is_used_as_is_when_it_exists() {
        let tree = Tree::new("slash");
        // Not executable: execve, not resolve, reports that.
        let file = tree.file("a/run.sh", 0o644);
        let arg0 = file.as_os_str().as_bytes();
        assert_eq!(
            find_program(arg0, b"/nonexistent", |_| false),
            Some(file.clone())
        );
        assert_eq!(find_program(b"/nonexistent/run.sh", b"", |_| true), None);
    }

    #[test]
    fn path_comes_from_the_workload_env_else_the_default() {
        let env: Vec<RawPath> = vec![
            "HOME=/root".into(),
            "PATH=/opt/bin".into(),
            "PATH=/second".into(),
        ];
        assert_eq!(path_var(&env), Some(&b"/opt/bin"[..]));
        assert_eq!(path_var(&[]), None);
    }

    #[test]
    fn run_reports_empty_args_and_missing_program() {
        let empty = ProcessSpec::default();
        assert!(matches!(run(&empty), Err(Error::EmptyArgs)));
        let missing = ProcessSpec {
            args: vec!["corral-no-such-program".into()],
            env: vec!["PATH=/nonexistent-corral".into()],
            ..ProcessSpec::default()
        };
        let err = run(&missing).err().expect("not found");
        assert_eq!(err.to_init_error().errno, Some(libc::ENOENT));
    }

    #[test]
    fn run_rejects_a_nul_byte_in_an_argument() {
        let process = ProcessSpec {
            args: vec!["/bin/sh".into(), RawPath(b"a\0b".to_vec())],
            ..ProcessSpec::default()
        };
        assert!(matches!(
            run(&process),
            Err(Error::NulByte {
                what: "argument",
                ..
            })
        ));
    }
}
