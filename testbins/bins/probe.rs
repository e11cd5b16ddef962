//! `probe`: reports what a process sees, so that corral's tests can assert
//! from inside a container (STYLE.md section 7).
//!
//! Usage: `/probe [CMD [ARGS...]]`, with `info` as the default command.
//!
//! | command          | does                                                        |
//! |------------------|-------------------------------------------------------------|
//! | `info`           | one JSON object describing the process (see [`info`])       |
//! | `fds`            | JSON array of open fd numbers                               |
//! | `mounts`         | JSON array of mount points (field 5 of mountinfo)           |
//! | `hostname`       | JSON string from `/proc/sys/kernel/hostname`                |
//! | `isatty`         | JSON array of three bools, for fds 0, 1, 2                  |
//! | `winsize`        | JSON `[rows, cols]` of the terminal on fd 0 (`TIOCGWINSZ`)  |
//! | `exit N`         | exits with status N                                         |
//! | `stamp-exit`     | prints `CLOCK_MONOTONIC` in ns (JSON number), then exits 0 at once |
//! | `sleep SECS`     | sleeps (fractional seconds allowed), exits 0                |
//! | `spin SECS`      | busy-loops on the cpu for SECS, exits 0                     |
//! | `pause`          | sleeps until a signal ends the process                      |
//! | `signal-self SIG`| `kill(getpid(), SIG)`; SIG is a number or name (`TERM`)     |
//! | `echo ARGS...`   | raw ARGS joined by spaces, then a newline (not JSON)        |
//! | `cat`            | copies stdin to stdout until EOF (not JSON)                 |
//! | `write FILE TEXT`| writes TEXT (no newline added) to FILE                      |
//! | `read FILE`      | writes the raw contents of FILE to stdout (not JSON)        |
//! | `mkdir DIR`      | `mkdir(DIR)`; prints the errno as a JSON number, 0 for none |
//! | `getpid`         | prints `getpid()` as a JSON number                          |
//! | `alloc MIB`      | allocates and touches MIB MiB, one MiB at a time, exits 0   |
//! | `fork N`         | starts N `/probe pause` children; JSON `{"started":k,"error":e}` (e null when all started), then kills them |
//! | `count`          | writes 1, 2, 3, ... one per line to stdout, forever (not JSON) |
//! | `emit BYTES [2]` | writes BYTES of the pattern `i % 251` to stdout (stderr: 2)  |
//! | `hook-log FILE [pause \| exit N]` | as an OCI hook: appends one JSON line `{"args","env","stdin","pid","ns"}` to FILE, then pauses or exits N (default 0) |
//! | `ioprio`         | JSON `{"class","level"}` from `ioprio_get(IOPRIO_WHO_PROCESS, 0)` |
//! | `sched`          | JSON `{"policy","flags","nice","priority","runtime","deadline","period"}` from `sched_getattr(0)` |
//! | `affinity`       | JSON array of the CPUs in `sched_getaffinity(0)`              |
//! | `mempolicy`      | JSON `{"mode","flags","nodes"}` from `get_mempolicy` (mode without the `MPOL_F_*` bits, which go to `flags`) |
//! | `netdevs`        | JSON object: each interface in `/proc/self/net/dev` → its `/sys/class/net/NAME/flags` as a number (null if unreadable) |
//! | `stat PATH`      | JSON `{"type","mode","uid","gid","major","minor"}` of PATH (`lstat`); `type` is `c`, `b`, `p`, `d`, `f`, `l` or `s` |
//! | `tree DIR`       | JSON object: each path below DIR (relative, sorted, symlinks not followed) to `{"type","mode","uid","gid","mtime","link","text"}`; `link` is a symlink's target, `text` a regular file's contents (else null) |
//!
//! Exit status: 0 on success, 1 when the operation fails (the error is on
//! stderr), 2 for an unknown command or bad arguments, 3 when `signal-self`
//! returns although the signal should have ended the process.
//!
//! JSON output is compact, on one line, with a trailing newline. A value that
//! cannot be read (no /proc, EACCES) is `null` rather than an error, so that
//! one missing file does not hide the rest. Strings are raw bytes from the
//! kernel (paths, env, args): valid UTF-8 is kept, and each byte that is not
//! part of valid UTF-8 is written as `\u00XX`. That is lossy on purpose: a
//! JSON reader sees U+00XX, which differs from any valid UTF-8 input except a
//! literal U+00XX, and tests only ever need to tell such bytes apart from
//! clean ones.
//!
//! Only std is used: this file is compiled by `testbins/build.rs` with plain
//! rustc into a static binary, so it also runs in a rootfs with no libc.
//! The raw syscalls std does not wrap are in `probe/sys.rs`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

#[path = "shared/raw.rs"]
mod raw;
#[path = "probe/sys.rs"]
mod sys;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cmd = args.get(1).map(|a| a.to_string_lossy().into_owned());
    let rest = args.get(2..).unwrap_or_default();
    let result = match cmd.as_deref().unwrap_or("info") {
        "info" => emit_json(&info()),
        "fds" => emit_json(&fds_json(open_fds().as_deref())),
        "mounts" => emit_json(&mounts()),
        "hostname" => emit_json(&read_trimmed("/proc/sys/kernel/hostname")),
        "isatty" => emit_json(&isatty()),
        "winsize" => cmd_winsize(),
        "exit" => cmd_exit(rest),
        "stamp-exit" => cmd_stamp_exit(),
        "sleep" => cmd_sleep(rest),
        "spin" => cmd_spin(rest),
        "pause" => cmd_pause(),
        "signal-self" => cmd_signal_self(rest),
        "echo" => cmd_echo(rest),
        "cat" => cmd_cat(),
        "write" => cmd_write(rest),
        "read" => cmd_read(rest),
        "mkdir" => cmd_mkdir(rest),
        "getpid" => emit_json(&Json::Int(i64::from(std::process::id()))),
        "alloc" => cmd_alloc(rest),
        "fork" => cmd_fork(rest),
        "count" => cmd_count(),
        "emit" => cmd_emit(rest),
        "hook-log" => cmd_hook_log(rest),
        "stat" => cmd_stat(rest),
        "tree" => cmd_tree(rest),
        "ioprio" => cmd_ioprio(),
        "sched" => cmd_sched(),
        "affinity" => cmd_affinity(),
        "mempolicy" => cmd_mempolicy(),
        "netdevs" => cmd_netdevs(),
        other => Err(Fail::usage(format!("unknown command {other:?}"))),
    };
    if let Err(fail) = result {
        eprintln!("probe: {}", fail.msg);
        std::process::exit(fail.code);
    }
}

/// Why a command failed: the exit status and the message for stderr.
struct Fail {
    code: i32,
    msg: String,
}

impl Fail {
    fn usage(msg: String) -> Fail {
        Fail { code: 2, msg }
    }

    fn io(what: String, e: io::Error) -> Fail {
        Fail {
            code: 1,
            msg: format!("{what}: {e}"),
        }
    }
}

type Res = Result<(), Fail>;

#[path = "probe/json.rs"]
mod json;
use json::*;

#[path = "probe/info.rs"]
mod info;
use info::*;

// ---------------------------------------------------------------------------
// other commands

fn arg<'a>(rest: &'a [OsString], idx: usize, usage: &str) -> Result<&'a OsStr, Fail> {
    rest.get(idx)
        .map(OsString::as_os_str)
        .ok_or_else(|| Fail::usage(format!("usage: probe {usage}")))
}

fn parse_secs(rest: &[OsString], usage: &str) -> Result<Duration, Fail> {
    let raw = arg(rest, 0, usage)?;
    let secs = raw.to_str().and_then(|s| s.parse::<f64>().ok());
    secs.and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| Fail::usage(format!("{raw:?} is not a number of seconds")))
}

fn cmd_exit(rest: &[OsString]) -> Res {
    let raw = arg(rest, 0, "exit N")?;
    let code = raw.to_str().and_then(|s| s.parse::<i32>().ok());
    let code = code.ok_or_else(|| Fail::usage(format!("{raw:?} is not an exit status")))?;
    std::process::exit(code)
}

/// For the exit → wake-up bench: the last things before `exit_group` are
/// reading the clock and one `write(2)` (no libc or std exit handlers
/// run after it).
fn cmd_stamp_exit() -> Res {
    let now = monotonic_ns().map_err(|e| Fail::io("clock_gettime".into(), e))?;
    emit_json(&Json::Int(now))?;
    sys::exit_group(0)
}

/// `clock_gettime(CLOCK_MONOTONIC)` in ns: std's `Instant` hides the
/// value.
fn monotonic_ns() -> io::Result<i64> {
    const CLOCK_MONOTONIC: usize = 1;
    let mut ts = [0i64; 2];
    // SAFETY: clock_gettime(2) writes one `struct timespec` (two i64 on
    // both architectures) at the pointer, which points at `ts`, a live
    // local of that size and layout.
    let ret = unsafe {
        sys::syscall3_raw(
            sys::CLOCK_GETTIME,
            CLOCK_MONOTONIC,
            ts.as_mut_ptr() as usize,
            0,
        )
    };
    sys::result(ret)?;
    Ok(ts[0] * 1_000_000_000 + ts[1])
}

fn cmd_sleep(rest: &[OsString]) -> Res {
    std::thread::sleep(parse_secs(rest, "sleep SECS")?);
    Ok(())
}

fn cmd_spin(rest: &[OsString]) -> Res {
    let end = Instant::now() + parse_secs(rest, "spin SECS")?;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
    Ok(())
}

fn cmd_pause() -> Res {
    // park() may return spuriously; only a signal ends this loop.
    loop {
        std::thread::park();
    }
}

fn cmd_echo(rest: &[OsString]) -> Res {
    let mut line = rest
        .iter()
        .map(|a| a.as_bytes())
        .collect::<Vec<_>>()
        .join(&b' ');
    line.push(b'\n');
    emit(&line)
}

fn cmd_cat() -> Res {
    let mut out = io::stdout().lock();
    io::copy(&mut io::stdin().lock(), &mut out)
        .and_then(|_| out.flush())
        .map_err(|e| Fail::io("copy stdin to stdout".into(), e))
}

fn cmd_write(rest: &[OsString]) -> Res {
    let file = arg(rest, 0, "write FILE TEXT")?;
    let text = arg(rest, 1, "write FILE TEXT")?;
    fs::write(file, text.as_bytes()).map_err(|e| Fail::io(format!("write {file:?}"), e))
}

fn cmd_read(rest: &[OsString]) -> Res {
    let file = arg(rest, 0, "read FILE")?;
    let bytes = fs::read(file).map_err(|e| Fail::io(format!("read {file:?}"), e))?;
    emit(&bytes)
}

fn cmd_hook_log(rest: &[OsString]) -> Res {
    use io::Read;
    let file = arg(rest, 0, "hook-log FILE [pause | exit N]")?;
    let mut stdin = Vec::new();
    io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|e| Fail::io("read stdin".into(), e))?;
    let env = std::env::vars_os().map(|(k, v)| env_entry(&k, &v));
    let args = std::env::args_os().map(|a| Json::str(a.as_bytes()));
    let line = Json::Obj(vec![
        ("args", Json::Arr(args.collect())),
        ("env", Json::Arr(env.collect())),
        ("stdin", Json::str(&stdin)),
        ("pid", Json::Int(i64::from(std::process::id()))),
        ("ns", namespaces()),
    ]);
    let mut out = Vec::new();
    line.write(&mut out);
    out.push(b'\n');
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .map_err(|e| Fail::io(format!("open {file:?}"), e))?;
    f.write_all(&out)
        .map_err(|e| Fail::io(format!("append to {file:?}"), e))?;
    drop(f);
    match rest.get(1).map(|a| a.as_bytes()) {
        Some(b"pause") => cmd_pause(),
        Some(b"exit") => cmd_exit(&rest[2..]),
        _ => Ok(()),
    }
}

fn cmd_stat(rest: &[OsString]) -> Res {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = arg(rest, 0, "stat PATH")?;
    let m = fs::symlink_metadata(path).map_err(|e| Fail::io(format!("stat {path:?}"), e))?;
    let t = m.file_type();
    let kind = if t.is_char_device() {
        "c"
    } else if t.is_block_device() {
        "b"
    } else if t.is_fifo() {
        "p"
    } else if t.is_dir() {
        "d"
    } else if t.is_symlink() {
        "l"
    } else if t.is_socket() {
        "s"
    } else {
        "f"
    };
    let rdev = m.rdev();
    // gnu_dev_major/minor from <sys/sysmacros.h>.
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    emit_json(&Json::Obj(vec![
        ("type", Json::str(kind)),
        ("mode", Json::Int(i64::from(m.mode() & 0o7777))),
        ("uid", Json::Int(i64::from(m.uid()))),
        ("gid", Json::Int(i64::from(m.gid()))),
        ("major", Json::Int(major as i64)),
        ("minor", Json::Int(minor as i64)),
    ]))
}

fn cmd_tree(rest: &[OsString]) -> Res {
    let dir = std::path::PathBuf::from(arg(rest, 0, "tree DIR")?);
    let mut entries = Vec::new();
    walk(&dir, &dir, &mut entries)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    emit_json(&Json::Map(entries))
}

fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Json)>) -> Res {
    use std::os::unix::fs::MetadataExt;
    let list = fs::read_dir(dir).map_err(|e| Fail::io(format!("read_dir {dir:?}"), e))?;
    for entry in list {
        let path = entry
            .map_err(|e| Fail::io(format!("read_dir {dir:?}"), e))?
            .path();
        let m = fs::symlink_metadata(&path).map_err(|e| Fail::io(format!("lstat {path:?}"), e))?;
        let t = m.file_type();
        let kind = if t.is_dir() {
            "d"
        } else if t.is_symlink() {
            "l"
        } else if t.is_file() {
            "f"
        } else {
            "o"
        };
        let link = match fs::read_link(&path) {
            Ok(target) if t.is_symlink() => Json::str(target.as_os_str().as_bytes()),
            _ => Json::Null,
        };
        let text = match fs::read(&path) {
            Ok(bytes) if t.is_file() => Json::str(bytes),
            _ => Json::Null,
        };
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        out.push((
            rel,
            Json::Obj(vec![
                ("type", Json::str(kind)),
                ("mode", Json::Int(i64::from(m.mode() & 0o7777))),
                ("uid", Json::Int(i64::from(m.uid()))),
                ("gid", Json::Int(i64::from(m.gid()))),
                ("mtime", Json::Int(m.mtime())),
                ("link", link),
                ("text", text),
            ]),
        ));
        if t.is_dir() {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

/// Reports the errno rather than failing: seccomp tests tell EPERM from
/// the filter apart from any other failure.
fn cmd_mkdir(rest: &[OsString]) -> Res {
    let dir = arg(rest, 0, "mkdir DIR")?;
    let errno = match fs::create_dir(dir) {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    };
    emit_json(&Json::Int(i64::from(errno)))
}

// ---------------------------------------------------------------------------
// winsize

/// `struct winsize` from `<asm-generic/termios.h>`.
#[repr(C)]
#[derive(Default)]
struct Winsize {
    rows: u16,
    cols: u16,
    xpixel: u16,
    ypixel: u16,
}

/// `TIOCGWINSZ` (the same number on x86_64 and aarch64).
const TIOCGWINSZ: usize = 0x5413;

fn cmd_winsize() -> Res {
    let mut size = Winsize::default();
    // SAFETY: ioctl(2) with TIOCGWINSZ writes one `struct winsize` at the
    // pointer, which points at `size`, a live local of that layout.
    let ret = unsafe {
        sys::syscall3_raw(
            sys::IOCTL,
            0,
            TIOCGWINSZ,
            &mut size as *mut Winsize as usize,
        )
    };
    sys::result(ret).map_err(|e| Fail::io("ioctl(0, TIOCGWINSZ)".into(), e))?;
    emit_json(&Json::Arr(vec![
        Json::Int(i64::from(size.rows)),
        Json::Int(i64::from(size.cols)),
    ]))
}

fn cmd_alloc(rest: &[OsString]) -> Res {
    let raw = arg(rest, 0, "alloc MIB")?;
    let mib = raw.to_str().and_then(|s| s.parse::<usize>().ok());
    let mib = mib.ok_or_else(|| Fail::usage(format!("{raw:?} is not a number of MiB")))?;
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for _ in 0..mib {
        // Non-zero bytes, so that every page is really touched.
        keep.push(vec![0x5a; 1 << 20]);
    }
    std::hint::black_box(&keep);
    Ok(())
}

fn cmd_fork(rest: &[OsString]) -> Res {
    let raw = arg(rest, 0, "fork N")?;
    let n = raw.to_str().and_then(|s| s.parse::<usize>().ok());
    let n = n.ok_or_else(|| Fail::usage(format!("{raw:?} is not a count")))?;
    let mut children = Vec::new();
    let mut error = Json::Null;
    for _ in 0..n {
        match std::process::Command::new("/probe").arg("pause").spawn() {
            Ok(c) => children.push(c),
            Err(e) => {
                error = Json::str(e.to_string());
                break;
            }
        }
    }
    let started = children.len() as i64;
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    emit_json(&Json::Obj(vec![
        ("started", Json::Int(started)),
        ("error", error),
    ]))
}

fn cmd_count() -> Res {
    let mut out = io::stdout().lock();
    let mut n: u64 = 0;
    loop {
        n += 1;
        writeln!(out, "{n}")
            .and_then(|_| out.flush())
            .map_err(|e| Fail::io("write stdout".into(), e))?;
    }
}

/// Byte `i` of `emit`'s output: a period of 251 (prime) does not line up
/// with any buffer size, so lost, repeated or reordered chunks show.
fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

fn cmd_emit(rest: &[OsString]) -> Res {
    let bytes: u64 = arg(rest, 0, "emit BYTES [2]")?
        .to_string_lossy()
        .parse()
        .map_err(|e| Fail::usage(format!("emit BYTES: {e}")))?;
    let fd = rest.get(1).map_or(1, |fd| if fd == "2" { 2 } else { 1 });
    // Both are unbuffered for writes this large (stdout's LineWriter
    // passes a chunk without a newline straight through).
    let mut out: Box<dyn Write> = if fd == 2 {
        Box::new(io::stderr().lock())
    } else {
        Box::new(io::stdout().lock())
    };
    // A whole period per chunk: 251 * 261 bytes, about 64 KiB.
    let chunk: Vec<u8> = (0..251 * 261).map(pattern_byte).collect();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])
            .map_err(|e| Fail::io(format!("write to fd {fd}"), e))?;
        left -= n as u64;
    }
    out.flush()
        .map_err(|e| Fail::io(format!("flush fd {fd}"), e))
}

// ---------------------------------------------------------------------------
// signal-self

/// Signal numbers shared by x86_64 and aarch64 (asm-generic/signal.h).
#[rustfmt::skip]
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6),
    ("BUS", 7), ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12),
    ("PIPE", 13), ("ALRM", 14), ("TERM", 15), ("STKFLT", 16), ("CHLD", 17),
    ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22),
    ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27),
    ("WINCH", 28), ("IO", 29), ("PWR", 30), ("SYS", 31),
];

/// Signals whose default action does not end the process (signal(7)):
/// 0 (existence check), CHLD, CONT, STOP, TSTP, TTIN, TTOU, URG, WINCH.
const NON_FATAL: &[i32] = &[0, 17, 18, 19, 20, 21, 22, 23, 28];

fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, num)| *num)
}

/// Sends SIG to probe itself. A fatal signal ends the process before
/// `kill` returns. If probe is still alive afterwards for a fatal signal,
/// it exits 3: that happens for pid 1 of a pid namespace, which the kernel
/// shields from signals it has no handler for (pid_namespaces(7)).
fn cmd_signal_self(rest: &[OsString]) -> Res {
    let raw = arg(rest, 0, "signal-self SIG")?;
    let sig = raw.to_str().and_then(parse_signal);
    let sig = sig.ok_or_else(|| Fail::usage(format!("{raw:?} is not a signal")))?;
    let pid = i32::try_from(std::process::id()).expect("pids fit in pid_t");
    let ret = sys::syscall3(sys::KILL, pid as usize, sig as usize, 0);
    sys::result(ret).map_err(|e| Fail::io(format!("kill({pid}, {sig})"), e))?;
    if NON_FATAL.contains(&sig) {
        return Ok(());
    }
    Err(Fail {
        code: 3,
        msg: format!("still running after signal {sig} (pid {pid})"),
    })
}

fn cmd_ioprio() -> Res {
    const IOPRIO_WHO_PROCESS: usize = 1;
    let ret = sys::syscall3(sys::IOPRIO_GET, IOPRIO_WHO_PROCESS, 0, 0);
    let value = sys::value(ret).map_err(|e| Fail::io("ioprio_get".into(), e))?;
    emit_json(&Json::Obj(vec![
        ("class", Json::Int((value >> 13) as i64)),
        ("level", Json::Int((value & 0x1fff) as i64)),
    ]))
}

/// `struct sched_attr`, `SCHED_ATTR_SIZE_VER0`.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn cmd_sched() -> Res {
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>();
    // SAFETY: sched_getattr(2) writes at most `size` bytes at the pointer,
    // which points at `attr`, a live `SchedAttr` of exactly that size and
    // of the kernel's VER0 layout (repr(C)).
    let ret = unsafe {
        sys::syscall5_raw(
            sys::SCHED_GETATTR,
            0,
            &mut attr as *mut SchedAttr as usize,
            size,
            0,
            0,
        )
    };
    sys::value(ret).map_err(|e| Fail::io("sched_getattr".into(), e))?;
    let int = |v: u64| Json::Int(v as i64);
    emit_json(&Json::Obj(vec![
        ("policy", int(u64::from(attr.policy))),
        ("flags", int(attr.flags)),
        ("nice", Json::Int(i64::from(attr.nice))),
        ("priority", int(u64::from(attr.priority))),
        ("runtime", int(attr.runtime)),
        ("deadline", int(attr.deadline)),
        ("period", int(attr.period)),
    ]))
}

fn cmd_affinity() -> Res {
    let mut mask = [0u64; 16]; // 1024 CPUs
    // SAFETY: sched_getaffinity(2) writes at most `len` bytes at the
    // pointer, which is `mask`, a live, writable local of exactly that size.
    let ret = unsafe {
        sys::syscall3_raw(
            sys::SCHED_GETAFFINITY,
            0,
            std::mem::size_of_val(&mask),
            mask.as_mut_ptr() as usize,
        )
    };
    sys::value(ret).map_err(|e| Fail::io("sched_getaffinity".into(), e))?;
    emit_json(&Json::Arr(bits(&mask)))
}

/// The set bits of a kernel bitmap of 64-bit words, as JSON numbers.
fn bits(words: &[u64]) -> Vec<Json> {
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        for b in 0..64 {
            if w & (1 << b) != 0 {
                out.push(Json::Int((i * 64 + b) as i64));
            }
        }
    }
    out
}

fn cmd_mempolicy() -> Res {
    const MODE_FLAGS: i32 = (1 << 15) | (1 << 14) | (1 << 13);
    let mut mode: i32 = 0;
    let mut nodes = [0u64; 16]; // 1024 nodes
    let maxnode = nodes.len() * 64;
    // SAFETY: get_mempolicy(2) with flags 0 and a null addr writes one int
    // at `mode` and BITS_TO_LONGS(maxnode) unsigned longs (64-bit here) at
    // `nodes`; both are live, writable locals of those sizes.
    let ret = unsafe {
        sys::syscall5_raw(
            sys::GET_MEMPOLICY,
            &mut mode as *mut i32 as usize,
            nodes.as_mut_ptr() as usize,
            maxnode,
            0,
            0,
        )
    };
    sys::value(ret).map_err(|e| Fail::io("get_mempolicy".into(), e))?;
    emit_json(&Json::Obj(vec![
        ("mode", Json::Int(i64::from(mode & !MODE_FLAGS))),
        ("flags", Json::Int(i64::from(mode & MODE_FLAGS))),
        ("nodes", Json::Arr(bits(&nodes))),
    ]))
}

fn cmd_netdevs() -> Res {
    let dev = fs::read_to_string("/proc/self/net/dev")
        .map_err(|e| Fail::io("read /proc/self/net/dev".into(), e))?;
    let mut out = Vec::new();
    // Two header lines, then "  name: counters...".
    for line in dev.lines().skip(2) {
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_owned();
        let flags = fs::read_to_string(format!("/sys/class/net/{name}/flags"))
            .ok()
            .and_then(|f| i64::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .map_or(Json::Null, Json::Int);
        out.push((name, flags));
    }
    emit_json(&Json::Map(out))
}
