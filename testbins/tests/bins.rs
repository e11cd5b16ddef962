//! Runs the test binaries directly on the host and checks the rootfs
//! builders. Needs no root.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corral_testbins::{BINS, BUSYBOX, bin_path, build_busybox_rootfs, build_rootfs, shared_rootfs};
use serde_json::Value;

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "corral-testbins-test-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `bin` with 0-2 piped and `input` on stdin.
fn run_with_input(bin: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(bin_path(bin))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

fn run(bin: &str, args: &[&str]) -> Output {
    run_with_input(bin, args, b"")
}

fn probe_json(args: &[&str]) -> Value {
    let out = run("probe", args);
    assert!(out.status.success(), "probe {args:?}: {out:?}");
    assert_eq!(out.stdout.last(), Some(&b'\n'), "JSON ends with a newline");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("probe {args:?} printed bad JSON ({e}): {out:?}"))
}

fn stdout(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).unwrap()
}

// ---------------------------------------------------------------------------
// probe

#[test]
fn probe_info_reports_every_key() {
    let info = probe_json(&["info"]);
    let keys = [
        "pid",
        "ppid",
        "uid",
        "gid",
        "euid",
        "egid",
        "groups",
        "cwd",
        "hostname",
        "domainname",
        "env",
        "args",
        "ns",
        "fds",
        "fd_targets",
        "isatty",
        "mounts",
        "procs",
        "caps",
        "no_new_privs",
        "seccomp",
        "rlimits",
        "umask",
        "root_readonly",
    ];
    let obj = info.as_object().unwrap();
    for key in keys {
        assert!(obj.contains_key(key), "missing {key}: {info}");
    }
    assert_eq!(obj.len(), keys.len(), "unexpected keys: {info}");

    let pid = info["pid"].as_u64().unwrap();
    assert_eq!(info["ppid"].as_u64(), Some(u64::from(std::process::id())));
    assert!(
        info["procs"]
            .as_array()
            .unwrap()
            .contains(&Value::from(pid))
    );
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(info["uid"].as_u64(), Some(uid.parse().unwrap()));
    assert!(info["groups"].is_array());
    assert_eq!(
        info["cwd"].as_str().map(PathBuf::from),
        Some(std::env::current_dir().unwrap())
    );
    assert_eq!(
        info["args"][0].as_str(),
        Some(bin_path("probe").to_str().unwrap())
    );
    assert_eq!(info["isatty"], serde_json::json!([false, false, false]));
    assert!(
        info["mounts"]
            .as_array()
            .unwrap()
            .contains(&Value::from("/"))
    );
    assert!(info["umask"].as_str().unwrap().len() == 4);
    assert!(info["no_new_privs"].is_u64() && info["seccomp"].is_u64());
    assert!(
        ["ok", "rofs", "PermissionDenied"].contains(&info["root_readonly"].as_str().unwrap()),
        "{info}"
    );
}

#[test]
fn probe_info_namespaces_match_host() {
    let info = probe_json(&["info"]);
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
        let ours = fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_eq!(info["ns"][ns].as_str(), ours.to_str(), "{ns}");
    }
    assert!(info["ns"]["time"].is_string() || info["ns"]["time"].is_null());
}

#[test]
fn probe_info_caps_and_rlimits_are_parsed() {
    let info = probe_json(&["info"]);
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let hex = info["caps"][cap].as_str().unwrap();
        assert!(
            hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{cap}={hex}"
        );
    }
    let nofile = info["rlimits"]["Max open files"].as_array().unwrap();
    assert_eq!(nofile.len(), 2);
    assert!(
        nofile
            .iter()
            .all(|v| v.as_str().unwrap().parse::<u64>().is_ok()),
        "{nofile:?}"
    );
    assert_eq!(
        info["rlimits"].as_object().unwrap().len(),
        16,
        "{}",
        info["rlimits"]
    );
}

#[test]
fn probe_without_command_runs_info() {
    let info = probe_json(&[]);
    assert!(info["fds"].is_array() && info["ns"].is_object());
}

#[test]
fn probe_escapes_env_and_args_including_non_utf8() {
    let weird = "q\"b\\s\nn\tt\u{1}c\u{7f}d é";
    let raw_arg = OsStr::from_bytes(b"x\xffy");
    let out = Command::new(bin_path("probe"))
        .args([OsStr::new("info"), OsStr::new(weird), raw_arg])
        .env("PROBE_WEIRD", weird)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::str::from_utf8(&out.stdout).unwrap();
    assert!(
        text.contains(r#"x\u00ffy"#),
        "invalid byte as \\u00XX: {text}"
    );
    let info: Value = serde_json::from_str(text).unwrap();
    assert_eq!(info["args"][2].as_str(), Some(weird));
    assert_eq!(info["args"][3].as_str(), Some("x\u{ff}y"));
    let env = info["env"].as_array().unwrap();
    assert!(
        env.contains(&Value::from(format!("PROBE_WEIRD={weird}"))),
        "{env:?}"
    );
}

/// Fds >= 3 of this process without CLOEXEC, which every child inherits.
/// Rust opens all of its fds CLOEXEC, so these can only come from whoever
/// started the test binary (a shell or CI runner that leaks fds); they are
/// reported so that a leak in the environment is not blamed on probe.
fn inherited_fds() -> Vec<u64> {
    const O_CLOEXEC: u64 = 0o2000000;
    let mut fds: Vec<u64> = fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= 3)
        .filter(|fd| {
            // The read_dir fd and fds of other test threads may be gone by now.
            let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
                return false;
            };
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .unwrap()
                .trim();
            u64::from_str_radix(flags, 8).unwrap() & O_CLOEXEC == 0
        })
        .collect();
    fds.sort_unstable();
    if !fds.is_empty() {
        eprintln!(
            "note: the test process inherited fds {fds:?} without CLOEXEC; probe sees them too"
        );
    }
    fds
}

fn expected_fds() -> Value {
    let mut fds = vec![0, 1, 2];
    fds.extend(inherited_fds());
    Value::from(fds)
}

#[test]
fn probe_fds_lists_only_stdio() {
    let expected = expected_fds();
    let out = run("probe", &["fds"]);
    assert!(out.status.success(), "{out:?}");
    let fds: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fds, expected);
    if expected == serde_json::json!([0, 1, 2]) {
        assert_eq!(stdout(&out), "[0,1,2]\n");
    }
}

#[test]
fn probe_info_fd_targets_cover_exactly_fds() {
    let expected = expected_fds();
    let info = probe_json(&["info"]);
    assert_eq!(info["fds"], expected);
    let targets = info["fd_targets"].as_object().unwrap();
    let mut keys: Vec<String> = expected
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    keys.sort();
    // serde_json's map sorts keys as strings.
    assert_eq!(targets.keys().cloned().collect::<Vec<_>>(), keys);
    assert!(
        targets["1"].as_str().unwrap().starts_with("pipe:["),
        "{targets:?}"
    );
}

#[test]
fn probe_exit_7_exits_7() {
    assert_eq!(run("probe", &["exit", "7"]).status.code(), Some(7));
}

#[test]
fn probe_unknown_command_exits_2_with_message() {
    let out = run("probe", &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("frobnicate"),
        "{out:?}"
    );
    assert_eq!(run("probe", &["exit"]).status.code(), Some(2));
    assert_eq!(run("probe", &["sleep", "soon"]).status.code(), Some(2));
}

#[test]
fn probe_echo_and_cat_pass_bytes_through() {
    assert_eq!(stdout(&run("probe", &["echo", "a", "b"])), "a b\n");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = run_with_input("probe", &["cat"], &data);
    assert!(out.status.success());
    assert_eq!(out.stdout, data);
}

#[test]
fn probe_write_then_read_round_trips() {
    let dir = TempDir::new("probe-rw");
    let file = dir.0.join("f");
    let file = file.to_str().unwrap();
    assert!(
        run("probe", &["write", file, "hello\nworld"])
            .status
            .success()
    );
    let out = run("probe", &["read", file]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "hello\nworld");
}

#[test]
fn probe_read_and_write_failures_exit_1_with_message() {
    let out = run("probe", &["read", "/nonexistent/probe-file"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/probe-file"),
        "{out:?}"
    );
    let out = run("probe", &["write", "/nonexistent/dir/f", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
}

#[test]
fn probe_hostname_and_isatty() {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        probe_json(&["hostname"]),
        Value::from(host.trim_end_matches('\n'))
    );
    assert_eq!(
        probe_json(&["isatty"]),
        serde_json::json!([false, false, false])
    );
}

#[test]
fn probe_mounts_lists_root() {
    let mounts = probe_json(&["mounts"]);
    assert!(
        mounts.as_array().unwrap().contains(&Value::from("/")),
        "{mounts}"
    );
}

#[test]
fn probe_sleep_and_spin_take_their_time() {
    for cmd in ["sleep", "spin"] {
        let start = Instant::now();
        assert!(run("probe", &[cmd, "0.2"]).status.success());
        assert!(start.elapsed() >= Duration::from_millis(200), "{cmd}");
    }
}

#[test]
fn probe_signal_self_term_dies_by_sigterm() {
    let out = run("probe", &["signal-self", "TERM"]);
    assert_eq!(out.status.signal(), Some(15), "{out:?}");
    let out = run("probe", &["signal-self", "9"]);
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert!(run("probe", &["signal-self", "SIGCHLD"]).status.success());
    assert_eq!(
        run("probe", &["signal-self", "NOPE"]).status.code(),
        Some(2)
    );
}

#[test]
fn probe_pause_runs_until_killed() {
    let mut child = Command::new(bin_path("probe"))
        .arg("pause")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none(), "pause returned");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
}

// ---------------------------------------------------------------------------
// small binaries

#[test]
fn true_and_false_exit_0_and_1() {
    assert_eq!(run("true", &["ignored"]).status.code(), Some(0));
    assert_eq!(run("false", &[]).status.code(), Some(1));
}

#[test]
fn stamp_exit_prints_the_monotonic_clock_and_exits_0() {
    let ns = |ts: rustix::time::Timespec| ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128;
    let before = ns(rustix::time::clock_gettime(
        rustix::time::ClockId::Monotonic,
    ));
    let out = run("stamp-exit", &["ignored"]);
    let after = ns(rustix::time::clock_gettime(
        rustix::time::ClockId::Monotonic,
    ));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.ends_with('\n') && !text.starts_with('0'), "{text:?}");
    let stamp: u128 = text.trim_end().parse().expect("decimal ns");
    assert!(
        before <= stamp && stamp <= after,
        "{before} <= {stamp} <= {after}"
    );
    // A closed stdout: the write fails, and so does the exit status.
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"exec "$0" >&-"#)
        .arg(bin_path("stamp-exit"))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn sleep_sleeps_fractional_seconds() {
    let start = Instant::now();
    assert!(run("sleep", &["0.15"]).status.success());
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(run("sleep", &[]).status.code(), Some(2));
    assert_eq!(run("sleep", &["-1"]).status.code(), Some(2));
}

#[test]
fn echo_joins_args_with_spaces() {
    assert_eq!(stdout(&run("echo", &["a", "b"])), "a b\n");
    assert_eq!(stdout(&run("echo", &[])), "\n");
}

#[test]
fn cat_copies_stdin_and_files() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(run_with_input("cat", &[], &data).stdout, data);

    let dir = TempDir::new("cat");
    fs::write(dir.0.join("a"), "one\n").unwrap();
    fs::write(dir.0.join("b"), "two\n").unwrap();
    let (a, b) = (dir.0.join("a"), dir.0.join("b"));
    let out = run_with_input(
        "cat",
        &[a.to_str().unwrap(), "-", b.to_str().unwrap()],
        b"mid\n",
    );
    assert!(out.status.success());
    assert_eq!(stdout(&out), "one\nmid\ntwo\n");

    let out = run("cat", &["/nonexistent/cat-file", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "one\n");
}

#[test]
fn every_binary_is_statically_linked() {
    assert_eq!(
        BINS,
        [
            "cat",
            "echo",
            "false",
            "probe",
            "sleep",
            "stamp-exit",
            "true"
        ]
    );
    for name in BINS {
        assert_eq!(
            elf_interp(bin_path(name)),
            None,
            "{name} has a PT_INTERP segment"
        );
        assert!(corral_testbins::is_statically_linked(bin_path(name)).unwrap());
    }
    // Control: this test binary is dynamically linked, so the check can fail.
    let me = std::env::current_exe().unwrap();
    assert!(elf_interp(&me).is_some());
    assert!(!corral_testbins::is_statically_linked(&me).unwrap());
}

/// The PT_INTERP path of a little-endian ELF64 file, parsed here
/// independently of the crate's `is_statically_linked`.
fn elf_interp(path: &Path) -> Option<String> {
    let elf = fs::read(path).unwrap();
    assert_eq!(
        &elf[..6],
        b"\x7fELF\x02\x01",
        "{path:?}: expected little-endian ELF64"
    );
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum).map(|i| phoff + i * phentsize).find_map(|ph| {
        let p_type = u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap());
        (p_type == 3).then(|| {
            let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
            String::from_utf8_lossy(&elf[offset..offset + size])
                .trim_end_matches('\0')
                .to_string()
        })
    })
}

#[test]
#[should_panic(expected = "no binary \"ls\"")]
fn bin_path_panics_on_unknown_name() {
    bin_path("ls");
}

// ---------------------------------------------------------------------------
// rootfs

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn assert_layout(root: &Path) {
    for dir in [
        "bin", "proc", "sys", "dev", "dev/pts", "dev/shm", "etc", "root",
    ] {
        assert!(root.join(dir).is_dir(), "{dir}");
        assert_eq!(mode(&root.join(dir)), 0o755, "{dir}");
    }
    assert_eq!(mode(&root.join("tmp")), 0o1777);
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0:") && passwd.contains("nobody:x:65534:65534:"),
        "{passwd}"
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group.contains("root:x:0:") && group.contains(":65534:"),
        "{group}"
    );
    assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"");
    assert_eq!(
        fs::read(root.join("probe")).unwrap(),
        fs::read(bin_path("probe")).unwrap()
    );
    assert_eq!(mode(&root.join("probe")), 0o755);
}

fn assert_no_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        assert!(
            !name.to_string_lossy().contains(".tmp-"),
            "leftover {:?}",
            entry.path()
        );
        if entry.file_type().unwrap().is_dir() {
            assert_no_temp_files(&entry.path());
        }
    }
}

#[test]
fn build_rootfs_lays_out_dirs_bins_and_etc() {
    let dir = TempDir::new("rootfs");
    let root = dir.0.join("rootfs");
    build_rootfs(&root).unwrap();
    assert_layout(&root);
    for name in BINS {
        let installed = root.join("bin").join(name);
        assert_eq!(mode(&installed), 0o755, "{name}");
        assert_eq!(
            fs::read(&installed).unwrap(),
            fs::read(bin_path(name)).unwrap(),
            "{name}"
        );
    }
    let out = Command::new(root.join("bin/echo"))
        .args(["in", "rootfs"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"in rootfs\n");

    // Idempotent, also over a changed file.
    fs::write(root.join("bin/true"), "junk").unwrap();
    build_rootfs(&root).unwrap();
    assert_layout(&root);
    assert_eq!(
        fs::read(root.join("bin/true")).unwrap(),
        fs::read(bin_path("true")).unwrap()
    );
    assert_no_temp_files(&root);
}

#[test]
fn build_rootfs_runs_concurrently_on_different_dirs() {
    let dir = TempDir::new("rootfs-concurrent");
    let roots: Vec<PathBuf> = (0..4).map(|i| dir.0.join(format!("r{i}"))).collect();
    std::thread::scope(|s| {
        for root in &roots {
            s.spawn(move || build_rootfs(root).unwrap());
        }
    });
    for root in &roots {
        assert_layout(root);
        assert_no_temp_files(root);
    }
}

#[test]
fn build_busybox_rootfs_links_every_applet() {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)"
    );
    let dir = TempDir::new("busybox");
    let root = dir.0.join("rootfs");
    build_busybox_rootfs(&root).unwrap();
    build_busybox_rootfs(&root).unwrap();
    assert_layout(&root);
    assert_eq!(
        fs::read(root.join("bin/busybox")).unwrap(),
        fs::read(BUSYBOX).unwrap()
    );
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap().stdout;
    let applets: Vec<&str> = std::str::from_utf8(&list).unwrap().lines().collect();
    assert!(applets.len() > 100);
    // It lists itself too; bin/busybox is the real file.
    for applet in applets.into_iter().filter(|a| *a != "busybox") {
        assert_eq!(
            fs::read_link(root.join("bin").join(applet)).unwrap(),
            Path::new("busybox"),
            "{applet}"
        );
    }
    let out = Command::new(root.join("bin/sh"))
        .args(["-c", "echo from sh"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"from sh\n");
    assert_no_temp_files(&root);
}

#[test]
fn shared_rootfs_is_built_once_and_complete() {
    let root = shared_rootfs();
    assert_eq!(root, shared_rootfs());
    assert!(root.starts_with(std::env::temp_dir()));
    let name = root.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("corral-testbins-"), "{name}");
    assert_layout(root);
    for name in BINS {
        assert!(root.join("bin").join(name).is_file(), "{name}");
    }
}
