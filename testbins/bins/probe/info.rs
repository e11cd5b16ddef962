//! `probe info`: everything probe can see, as one JSON object.

use super::*;

/// Everything probe can see, as one object. Keys: pid, ppid, uid, gid,
/// euid, egid, groups, cwd, hostname, domainname, env, args, ns, fds,
/// fd_targets, isatty, mounts, procs, caps, no_new_privs, seccomp, rlimits,
/// umask, root_readonly.
pub fn info() -> Json {
    // fds first, before this function has any other file open.
    let fds = open_fds();
    let status = fs::read_to_string("/proc/self/status").ok();
    let field = |key: &str| status.as_deref().and_then(|s| status_field(s, key));
    let id = |key: &str, idx: usize| {
        let value = field(key).and_then(|v| v.split_whitespace().nth(idx)?.parse().ok());
        value.map_or(Json::Null, Json::Int)
    };
    let int = |key: &str| {
        field(key)
            .and_then(|v| v.parse().ok())
            .map_or(Json::Null, Json::Int)
    };
    let text = |key: &str| field(key).map_or(Json::Null, Json::str);
    let groups = field("Groups").map_or(Json::Null, |v| {
        Json::Arr(
            v.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .map(Json::Int)
                .collect(),
        )
    });
    let caps = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map(|k| (k, text(k)));
    let cwd = std::env::current_dir().map_or(Json::Null, |p| Json::str(p.as_os_str().as_bytes()));
    let env = std::env::vars_os().map(|(k, v)| env_entry(&k, &v));
    let args = std::env::args_os().map(|a| Json::str(a.as_bytes()));
    let ppid = std::os::unix::process::parent_id();
    Json::Obj(vec![
        ("pid", Json::Int(i64::from(std::process::id()))),
        ("ppid", Json::Int(i64::from(ppid))),
        // /proc/self/status lists real, effective, saved and filesystem ids.
        ("uid", id("Uid", 0)),
        ("gid", id("Gid", 0)),
        ("euid", id("Uid", 1)),
        ("egid", id("Gid", 1)),
        ("groups", groups),
        ("cwd", cwd),
        ("hostname", read_trimmed("/proc/sys/kernel/hostname")),
        ("domainname", read_trimmed("/proc/sys/kernel/domainname")),
        ("env", Json::Arr(env.collect())),
        ("args", Json::Arr(args.collect())),
        ("ns", namespaces()),
        ("fds", fds_json(fds.as_deref())),
        ("fd_targets", fd_targets_json(fds.as_deref())),
        ("isatty", isatty()),
        ("mounts", mounts()),
        ("procs", procs()),
        ("caps", Json::Obj(caps.into())),
        ("no_new_privs", int("NoNewPrivs")),
        ("seccomp", int("Seccomp")),
        ("rlimits", rlimits()),
        ("umask", text("Umask")),
        ("root_readonly", root_readonly()),
    ])
}

/// The value of `key:` in /proc/self/status, trimmed.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then_some(v.trim())
    })
}

pub fn env_entry(key: &OsStr, value: &OsStr) -> Json {
    let mut entry = key.as_bytes().to_vec();
    entry.push(b'=');
    entry.extend_from_slice(value.as_bytes());
    Json::Str(entry)
}

/// File contents without the trailing newline, or null if unreadable.
pub fn read_trimmed(path: &str) -> Json {
    match fs::read(path) {
        Ok(mut bytes) => {
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
            }
            Json::Str(bytes)
        }
        Err(_) => Json::Null,
    }
}

pub fn readlink_json(path: &str) -> Json {
    fs::read_link(path).map_or(Json::Null, |t| Json::str(t.as_os_str().as_bytes()))
}

pub fn namespaces() -> Json {
    let names = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];
    Json::Obj(
        names
            .map(|n| (n, readlink_json(&format!("/proc/self/ns/{n}"))))
            .into(),
    )
}

/// An open fd and its readlink target (None if readlink failed other than
/// with ENOENT).
pub type OpenFd = (i64, Option<OsString>);

/// Open fds, sorted, or None when /proc/self/fd cannot be listed.
///
/// Listing /proc/self/fd needs an fd of its own, and that fd shows up in the
/// listing under a number we cannot learn from std. So the names are
/// collected first and the directory is closed; the listing fd is then the
/// one entry whose readlink fails with ENOENT. Nothing opens an fd between
/// the close and the readlinks (probe has one thread), so that number cannot
/// be reused by anything else in between.
pub fn open_fds() -> Option<Vec<OpenFd>> {
    let dir = fs::read_dir("/proc/self/fd").ok()?;
    // `collect` consumes `dir`, so the directory fd is closed when it returns.
    let numbers: Vec<i64> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut fds: Vec<OpenFd> = numbers
        .into_iter()
        .filter_map(|fd| match fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(target) => Some((fd, Some(target.into_os_string()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(_) => Some((fd, None)),
        })
        .collect();
    fds.sort_by_key(|(fd, _)| *fd);
    Some(fds)
}

pub fn fds_json(fds: Option<&[OpenFd]>) -> Json {
    fds.map_or(Json::Null, |fds| {
        Json::Arr(fds.iter().map(|(fd, _)| Json::Int(*fd)).collect())
    })
}

pub fn fd_targets_json(fds: Option<&[OpenFd]>) -> Json {
    let Some(fds) = fds else { return Json::Null };
    let target = |t: &Option<OsString>| t.as_ref().map_or(Json::Null, |t| Json::str(t.as_bytes()));
    Json::Map(
        fds.iter()
            .map(|(fd, t)| (fd.to_string(), target(t)))
            .collect(),
    )
}

pub fn isatty() -> Json {
    Json::Arr(vec![
        Json::Bool(io::stdin().is_terminal()),
        Json::Bool(io::stdout().is_terminal()),
        Json::Bool(io::stderr().is_terminal()),
    ])
}

/// Mount points in mountinfo order, with the kernel's octal escapes
/// (`\040` for a space) decoded.
pub fn mounts() -> Json {
    let Ok(text) = fs::read("/proc/self/mountinfo") else {
        return Json::Null;
    };
    let points = text
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|point| Json::Str(unescape_octal(point)))
        .collect();
    Json::Arr(points)
}

pub fn unescape_octal(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let digits = s
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match digits {
            Some(d) if s[i] == b'\\' => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
                );
                i += 4;
            }
            _ => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

/// Numeric entries of /proc, sorted: the pids this process can see.
pub fn procs() -> Json {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Json::Null;
    };
    let mut pids: Vec<i64> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Json::Arr(pids.into_iter().map(Json::Int).collect())
}

/// /proc/self/limits as `{"Max open files": ["1024", "524288"], ...}`.
///
/// The kernel prints fixed-width columns (`"%-25s %-20s %-20s %-10s"` in
/// fs/proc/base.c) and names contain spaces, so the header gives the cuts.
pub fn rlimits() -> Json {
    let Ok(text) = fs::read_to_string("/proc/self/limits") else {
        return Json::Null;
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let (Some(soft), Some(hard), Some(units)) = (
        header.find("Soft Limit"),
        header.find("Hard Limit"),
        header.find("Units"),
    ) else {
        return Json::Null;
    };
    let column = |line: &str, from: usize, to: usize| {
        line.get(from..to.min(line.len()))
            .map(|s| Json::str(s.trim()))
    };
    let limits = lines
        .filter_map(|line| {
            let name = line.get(..soft)?.trim().to_string();
            let pair = vec![column(line, soft, hard)?, column(line, hard, units)?];
            Some((name, Json::Arr(pair)))
        })
        .collect();
    Json::Map(limits)
}

/// "rofs" if / is read-only, "ok" if a file could be created there (it is
/// removed again), else the `io::ErrorKind` name (e.g. "PermissionDenied").
pub fn root_readonly() -> Json {
    const EROFS: i32 = 30;
    let path = "/.probe-rw-test";
    let created = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    let verdict = match created {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(path);
            "ok".to_string()
        }
        Err(e) if e.raw_os_error() == Some(EROFS) => "rofs".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    Json::str(verdict)
}
