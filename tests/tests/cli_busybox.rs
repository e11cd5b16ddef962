//! The `corral` command line against runc on a busybox bundle.
//!
//! Every bundle is runc's default config (`runc spec`) with only
//! `process.args` changed and `linux.resources` removed. The comparison
//! tests keep `process.terminal: true` and run both `corral run` and
//! `runc run` with a pty as their stdin and stdout (runc refuses a terminal
//! container otherwise), then compare the exact bytes the container printed
//! (including the pty's `\r\n`) and the exit status, and check the
//! expected value as well. The lifecycle tests set `terminal: false`
//! (variant named in each test), since `create` without `--console-socket`
//! needs it; the console-socket test keeps `terminal: true`.
//!
//! Each runtime gets its own `--root` in the test's temp dir, so nothing
//! touches /run/corral or /run/runc.

use std::ffi::OsStr;
use std::path::Path;

use corral_tests::cli::*;
use corral_tests::{TempDir, build_busybox_rootfs, require_root};

/// Runs the default bundle with `args` under both runtimes.
fn run_both(name: &str, args: &[&str]) -> (Output, Output) {
    let mut w = CliWorld::new(name);
    w.bundle.set_args(args);
    let corral = w.run(&w.corral, name);
    let runc = w.run(&w.runc, name);
    (corral, runc)
}

/// Checks `expect` on runc's output (so a wrong expectation shows up as
/// such), then on corral's, then that the two agree byte for byte.
fn check_both(corral: &Output, runc: &Output, expect: impl Fn(&Output)) {
    expect(runc);
    expect(corral);
    assert_eq!(
        (corral.code(), &corral.stdout),
        (runc.code(), &runc.stdout),
        "corral and runc disagree\n=== corral ===\n{corral}\n=== runc ===\n{runc}"
    );
}

/// `create --bundle <bundle> <extra...> <id>`.
fn create(cli: &Cli, bundle: &Path, extra: &[&str], id: &str) -> Output {
    let mut args = vec![
        OsStr::new("create"),
        OsStr::new("--bundle"),
        bundle.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.push(OsStr::new(id));
    cli.exec(args)
}

fn pid_of(state: &serde_json::Value) -> i32 {
    let pid = state["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("state has no numeric pid: {state}"));
    i32::try_from(pid).expect("pid fits i32")
}

/// Creates and starts `id` (terminal false, `sleep 100`); returns a pidfd
/// of its process.
fn create_and_start(w: &CliWorld, id: &str) -> std::os::fd::OwnedFd {
    create(&w.corral, w.bundle.path(), &[], id).assert_success();
    let pidfd = pidfd(pid_of(&w.corral.state(id)));
    w.corral.exec(["start", id]).assert_success();
    assert_eq!(w.corral.state(id)["status"], "running");
    pidfd
}

/// The bundle for lifecycle tests: `sleep 100` with `terminal: false`,
/// because `create` without `--console-socket` needs it.
fn sleeper_world(name: &str) -> CliWorld {
    let mut w = CliWorld::new(name);
    w.bundle.set_args(&["sleep", "100"]).set_terminal(false);
    w
}

/// The row for `id` in `list` (table), split on whitespace:
/// ID PID STATUS BUNDLE CREATED OWNER.
fn list_row(cli: &Cli, id: &str) -> Option<Vec<String>> {
    let out = cli.exec(["list"]);
    out.assert_success();
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{out}"
    );
    lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.first().is_some_and(|c| c == id))
}

/// The entry for `id` in `list --format json`.
fn list_json_entry(cli: &Cli, id: &str) -> Option<serde_json::Value> {
    let out = cli.exec(["list", "--format", "json"]);
    out.assert_success();
    let all: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{out}\nnot JSON: {e}"));
    let all = all
        .as_array()
        .unwrap_or_else(|| panic!("list --format json is not an array: {out}"));
    all.iter().find(|c| c["id"] == id).cloned()
}

/// Asserts `list`, `list --format json` and `list -q` show `id` with
/// `status` and `pid`.
fn assert_listed(cli: &Cli, id: &str, status: &str, pid: i32) {
    let row = list_row(cli, id).unwrap_or_else(|| panic!("`list` does not show {id}"));
    assert_eq!(row[1], pid.to_string(), "list PID column of {id}: {row:?}");
    assert_eq!(row[2], status, "list STATUS column of {id}: {row:?}");
    let entry = list_json_entry(cli, id)
        .unwrap_or_else(|| panic!("`list --format json` does not show {id}"));
    assert_eq!(entry["status"], status, "{entry}");
    assert_eq!(entry["pid"], pid, "{entry}");
    let quiet = cli.exec(["list", "-q"]);
    assert!(
        quiet.stdout.lines().any(|l| l == id),
        "`list -q` does not show {id}: {quiet}"
    );
}

fn assert_not_listed(cli: &Cli, id: &str) {
    assert!(list_row(cli, id).is_none(), "`list` still shows {id}");
    assert!(
        list_json_entry(cli, id).is_none(),
        "`list --format json` still shows {id}"
    );
}

// ---------------------------------------------------------------------
// `run`: corral and runc agree

#[test]
fn exit_code_of_the_process_is_the_exit_code_of_run() {
    require_root();
    let (corral, runc) = run_both("exit3", &["sh", "-c", "exit 3"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 3, "{o}");
        assert_eq!(o.stdout, "", "{o}");
    });
}

/// `sh -c 'kill -9 $$'` cannot test signal exits: the shell is pid 1 of
/// its namespace, and the kernel drops signals that init sends itself
/// unless it handles them, so it survives. Both runtimes must show that.
#[test]
fn init_survives_sigkill_it_sends_itself() {
    require_root();
    let (corral, runc) = run_both("selfkill", &["sh", "-c", "kill -9 $$; echo survived"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.stdout, "survived\r\n", "{o}");
    });
}

/// The container's init killed from outside by `kill ID KILL` makes the
/// foreground `run` exit 128+9.
#[test]
fn run_exits_137_when_the_container_is_killed_with_sigkill() {
    require_root();
    let mut w = CliWorld::new("sigkill");
    w.bundle.set_args(&["sh", "-c", "echo ready; sleep 100"]);
    let run_and_kill = |cli: &Cli| -> Output {
        let id = w.id("sigkill");
        let _guard = cli.guard(&id);
        let pid_file = w.tmp().join(format!("{id}.pid"));
        let mut session = cli.spawn_pty([
            OsStr::new("run"),
            OsStr::new("--bundle"),
            w.bundle.path().as_os_str(),
            OsStr::new("--pid-file"),
            pid_file.as_os_str(),
            OsStr::new(&id),
        ]);
        session.read_until("ready");
        cli.exec(["kill", &id, "KILL"]).assert_success();
        let out = session.finish();
        assert_container_pid_gone(read_pid_file(&pid_file));
        assert_no_mounts_under(w.bundle.path());
        out
    };
    let corral = run_and_kill(&w.corral);
    let runc = run_and_kill(&w.runc);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 137, "{o}");
        assert_eq!(o.stdout, "ready\r\n", "{o}");
    });
}

#[test]
fn process_is_pid_1() {
    require_root();
    let (corral, runc) = run_both("pid1", &["sh", "-c", "echo $$"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.stdout, "1\r\n", "{o}");
    });
}

#[test]
fn hostname_is_runc_as_the_default_config_sets() {
    require_root();
    let (corral, runc) = run_both("hostname", &["hostname"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.stdout, "runc\r\n", "{o}");
    });
}

/// `ps` is the container's only process, so it lists just pid 1.
#[test]
fn proc_shows_only_the_container_processes() {
    require_root();
    let (corral, runc) = run_both("ps", &["ps", "-o", "pid"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        let pids: Vec<String> = o.lines().iter().map(|l| l.trim().to_owned()).collect();
        assert_eq!(pids, ["PID", "1"], "{o}");
    });
}

#[test]
fn root_filesystem_is_read_only() {
    require_root();
    let (corral, runc) = run_both("rofs", &["touch", "/x"]);
    check_both(&corral, &runc, |o| {
        assert_ne!(o.code(), 0, "{o}");
        assert!(
            o.stdout.contains("Read-only file system"),
            "expected EROFS from touch: {o}"
        );
    });
}

/// Every masked path of the default config that this kernel has reads
/// empty: files (such as /proc/kcore, /proc/keys) are masked with
/// /dev/null, directories (such as /sys/firmware) with an empty read-only
/// tmpfs. Paths the kernel lacks (/proc/kcore without CONFIG_PROC_KCORE)
/// are skipped, as runc skips them.
#[test]
fn masked_paths_read_empty() {
    require_root();
    let mut w = CliWorld::new("masked");
    let masked: Vec<String> = w.bundle.config()["linux"]["maskedPaths"]
        .as_array()
        .expect("the default config has linux.maskedPaths")
        .iter()
        .map(|p| p.as_str().expect("masked path is a string").to_owned())
        .collect();
    let (dirs, files): (Vec<&String>, Vec<&String>) = masked
        .iter()
        .filter(|p| Path::new(p).exists())
        .partition(|p| Path::new(p).is_dir());
    assert!(
        !files.is_empty() && !dirs.is_empty(),
        "need a masked file and a masked dir on this host: {masked:?}"
    );
    let mut script = String::new();
    let mut want = Vec::new();
    for f in &files {
        script += &format!("echo \"{f} $(wc -c < {f})\"; ");
        want.push(format!("{f} 0"));
    }
    for d in &dirs {
        script += &format!("echo \"{d} [$(ls -A {d})]\"; ");
        want.push(format!("{d} []"));
    }
    w.bundle.set_args(&["sh", "-c", &script]);
    let corral = w.run(&w.corral, "masked");
    let runc = w.run(&w.runc, "masked");
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.lines(), want, "{o}");
    });
}

/// runc's default config grants CAP_AUDIT_WRITE, CAP_KILL and
/// CAP_NET_BIND_SERVICE (bits 29, 5, 10) as bounding, effective and
/// permitted; it also lists them as ambient, which the kernel refuses
/// without inheritable, and runc goes on without them.
#[test]
fn capabilities_are_the_default_configs() {
    require_root();
    let (corral, runc) = run_both("caps", &["grep", "Cap", "/proc/self/status"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        let caps = "0000000020000420";
        let want = [
            "CapInh:\t0000000000000000".to_owned(),
            format!("CapPrm:\t{caps}"),
            format!("CapEff:\t{caps}"),
            format!("CapBnd:\t{caps}"),
            "CapAmb:\t0000000000000000".to_owned(),
        ];
        assert_eq!(o.lines(), want, "{o}");
    });
}

#[test]
fn open_files_rlimit_is_1024() {
    require_root();
    let (corral, runc) = run_both(
        "nofile",
        &[
            "sh",
            "-c",
            "ulimit -n; grep 'Max open files' /proc/self/limits",
        ],
    );
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        let lines = o.lines();
        assert_eq!(lines.len(), 2, "{o}");
        assert_eq!(lines[0], "1024", "{o}");
        let fields: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            fields,
            ["Max", "open", "files", "1024", "1024", "files"],
            "{o}"
        );
    });
}

#[test]
fn no_new_privileges_is_set() {
    require_root();
    let (corral, runc) = run_both("nnp", &["grep", "NoNewPrivs", "/proc/self/status"]);
    check_both(&corral, &runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.stdout, "NoNewPrivs:\t1\r\n", "{o}");
    });
}

// ---------------------------------------------------------------------
// create / start / state / kill / delete / list with corral

/// Terminal-false variant (see [`sleeper_world`]).
#[test]
fn create_start_kill_delete_moves_through_created_running_stopped() {
    require_root();
    let w = sleeper_world("cycle");
    let cli = &w.corral;
    let id = w.id("cycle");
    let _guard = cli.guard(&id);
    let pid_file = w.tmp().join("cycle.pid");
    let pid_file_arg = pid_file.to_str().expect("utf-8 temp path");

    create(cli, w.bundle.path(), &["--pid-file", pid_file_arg], &id).assert_success();
    let state = cli.state(&id);
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], id.as_str(), "{state}");
    assert_eq!(
        state["bundle"],
        w.bundle.path().to_str().unwrap(),
        "{state}"
    );
    let pid = pid_of(&state);
    assert!(pid > 0, "{state}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "created container's pid {pid} has no /proc entry"
    );
    assert_eq!(
        read_pid_file(&pid_file),
        pid,
        "--pid-file differs from state's pid"
    );
    let pidfd = pidfd(pid);
    assert!(cli.root().join(&id).is_dir(), "no state dir for {id}");
    assert_listed(cli, &id, "created", pid);

    cli.exec(["start", &id]).assert_success();
    let state = cli.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(pid_of(&state), pid, "{state}");
    assert!(!has_exited(&pidfd), "container exited after start");
    assert_listed(cli, &id, "running", pid);

    cli.exec(["kill", &id, "KILL"]).assert_success();
    wait_exit(&pidfd, "the container after `kill KILL`");
    let state = cli.state(&id);
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(
        state["pid"], 0,
        "a stopped container's pid is 0, as in runc: {state}"
    );
    assert_listed(cli, &id, "stopped", 0);

    cli.exec(["delete", &id]).assert_success();
    assert!(
        !cli.root().join(&id).exists(),
        "state dir of {id} left after delete"
    );
    cli.exec(["state", &id]).assert_failure_mentioning(&id);
    assert_not_listed(cli, &id);
    assert_no_mounts_under(w.bundle.path());
}

/// Terminal-false variant (see [`sleeper_world`]).
#[test]
fn create_with_a_duplicate_id_fails_and_leaves_the_first_container_intact() {
    require_root();
    let w = sleeper_world("dup");
    let cli = &w.corral;
    let id = w.id("dup");
    let _guard = cli.guard(&id);
    create(cli, w.bundle.path(), &[], &id).assert_success();
    let first = cli.state(&id);
    let pid = pid_of(&first);
    let pidfd = pidfd(pid);

    create(cli, w.bundle.path(), &[], &id).assert_failure_mentioning(&id);
    let after = cli.state(&id);
    assert_eq!(
        after, first,
        "the failed duplicate changed the first container's state"
    );
    assert!(
        !has_exited(&pidfd),
        "the failed duplicate killed the first container"
    );

    cli.exec(["start", &id]).assert_success();
    assert_eq!(cli.state(&id)["status"], "running");
    cli.exec(["delete", "--force", &id]).assert_success();
    wait_exit(&pidfd, "the container after `delete --force`");
    assert_no_mounts_under(w.bundle.path());
}

#[test]
fn start_of_an_unknown_id_fails_naming_it() {
    require_root();
    let w = sleeper_world("unknown");
    let id = w.id("no-such-container");
    w.corral.exec(["start", &id]).assert_failure_mentioning(&id);
    assert!(
        !w.corral.root().join(&id).exists(),
        "start of an unknown id made a state dir"
    );
}

/// Terminal-false variant (see [`sleeper_world`]).
#[test]
fn kill_with_a_bad_signal_name_fails_naming_it_and_signals_nothing() {
    require_root();
    let w = sleeper_world("badsig");
    let cli = &w.corral;
    let id = w.id("badsig");
    let _guard = cli.guard(&id);
    let pidfd = create_and_start(&w, &id);

    cli.exec(["kill", &id, "SIGNOPE"])
        .assert_failure_mentioning("SIGNOPE");
    assert_eq!(cli.state(&id)["status"], "running");
    assert!(!has_exited(&pidfd), "a bad kill stopped the container");

    cli.exec(["delete", "--force", &id]).assert_success();
    wait_exit(&pidfd, "the container after `delete --force`");
    assert_no_mounts_under(w.bundle.path());
}

/// Terminal-false variant (see [`sleeper_world`]).
#[test]
fn delete_of_a_running_container_needs_force() {
    require_root();
    let w = sleeper_world("delrun");
    let cli = &w.corral;
    let id = w.id("delrun");
    let _guard = cli.guard(&id);
    let pidfd = create_and_start(&w, &id);

    cli.exec(["delete", &id]).assert_failure_mentioning(&id);
    assert_eq!(cli.state(&id)["status"], "running");
    assert!(
        !has_exited(&pidfd),
        "delete without --force stopped the container"
    );

    cli.exec(["delete", "--force", &id]).assert_success();
    wait_exit(&pidfd, "the container after `delete --force`");
    assert!(
        !cli.root().join(&id).exists(),
        "state dir of {id} left after delete --force"
    );
    cli.exec(["state", &id]).assert_failure_mentioning(&id);
    assert_no_mounts_under(w.bundle.path());
}

/// Keeps the default `terminal: true`: `create` must refuse it without
/// `--console-socket`, and with one must hand the pty master over; the
/// container's output then arrives on that master. runc is held to the
/// same to check the listener.
#[test]
fn create_with_terminal_sends_the_pty_master_to_the_console_socket() {
    require_root();
    let mut w = CliWorld::new("console");
    w.bundle.set_args(&["sh", "-c", "echo hello-console"]);
    let with_console = |cli: &Cli| -> String {
        let id = w.id("console");
        let _guard = cli.guard(&id);

        create(cli, w.bundle.path(), &[], &id).assert_failure_mentioning("console");
        assert!(
            cli.exec(["state", &id]).status.code() != Some(0),
            "{} left a container after refusing",
            cli.name()
        );

        let socket = ConsoleSocket::bind(w.tmp().join(format!("{id}.sock")));
        let socket_arg = socket.path().to_str().expect("utf-8 temp path");
        create(cli, w.bundle.path(), &["--console-socket", socket_arg], &id).assert_success();
        let mut pty = PtyReader::new(
            socket.recv_master(),
            format!("{}'s console of {id}", cli.name()),
        );
        let pidfd = pidfd(pid_of(&cli.state(&id)));
        cli.exec(["start", &id]).assert_success();
        let text = pty.read_to_end();
        wait_exit(&pidfd, "the console container");
        assert_eq!(cli.state(&id)["status"], "stopped");
        cli.exec(["delete", &id]).assert_success();
        assert_no_mounts_under(w.bundle.path());
        text
    };
    let runc = with_console(&w.runc);
    let corral = with_console(&w.corral);
    assert_eq!(runc, "hello-console\r\n");
    assert_eq!(corral, runc);
}

// ---------------------------------------------------------------------
// spec

/// `corral spec` in an empty dir (as the working dir, like runc) writes a
/// config.json that runs with a busybox rootfs once `process.args` is set,
/// under corral and under runc alike; a second `spec` refuses to overwrite.
#[test]
fn spec_writes_a_runnable_config_and_refuses_to_overwrite_it() {
    require_root();
    let tmp = TempDir::new("spec");
    let dir = tmp.path().join("bundle");
    std::fs::create_dir(&dir).expect("mkdir bundle");
    let corral = Cli::corral(tmp.path().join("corral-root"));
    let runc = Cli::runc(tmp.path().join("runc-root"));

    corral.exec_in(Some(&dir), ["spec"]).assert_success();
    let written = std::fs::read(dir.join("config.json")).expect("spec wrote config.json");
    build_busybox_rootfs(&dir.join("rootfs")).expect("build busybox rootfs");
    let mut bundle = Bundle::load(&dir);
    let hostname = bundle.config()["hostname"]
        .as_str()
        .expect("spec sets a hostname")
        .to_owned();
    bundle.set_args(&["sh", "-c", "echo $$; hostname"]);
    let terminal = bundle.config()["process"]["terminal"] == true;
    assert!(
        terminal,
        "corral spec should default to terminal: true as runc's does"
    );

    let run = |cli: &Cli| {
        let id = corral_tests::unique_id("spec");
        let _guard = cli.guard(&id);
        let pid_file = tmp.path().join(format!("{id}.pid"));
        let out = cli.run_pty(&dir, &pid_file, &id);
        if pid_file.exists() {
            assert_container_pid_gone(read_pid_file(&pid_file));
        }
        assert_no_mounts_under(&dir);
        out
    };
    let by_corral = run(&corral);
    let by_runc = run(&runc);
    check_both(&by_corral, &by_runc, |o| {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.lines(), ["1".to_owned(), hostname.clone()], "{o}");
    });

    let before = std::fs::read(dir.join("config.json")).expect("read config.json");
    corral
        .exec_in(Some(&dir), ["spec"])
        .assert_failure_mentioning("config.json");
    assert_eq!(
        std::fs::read(dir.join("config.json")).expect("read config.json"),
        before,
        "spec overwrote config.json"
    );
    assert_ne!(
        written, before,
        "the test's args edit should have changed config.json"
    );
}
