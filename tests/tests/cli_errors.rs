//! Bad invocations of `corral`, beside runc's: an unknown id, a duplicate
//! id, a command in the wrong state, a bad signal, a malformed `--process`
//! file. Each must fail with runc's exit code and a message that says
//! what runc's says, and change nothing on disk: the state root is
//! compared file by file before and after, and every container keeps its
//! status.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use corral_tests::cli::*;
use corral_tests::require_root;

/// Every entry under `root`: regular files with their bytes, FIFOs and
/// dirs by kind (a FIFO is never opened: that would release a start).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}")) {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let key = path.strip_prefix(root).unwrap().display().to_string();
            if kind.is_dir() {
                out.insert(key, "dir".into());
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(key, String::from_utf8_lossy(&bytes).into_owned());
            } else {
                out.insert(key, format!("{kind:?}"));
            }
        }
    }
    out
}

fn create(cli: &Cli, bundle: &Path, id: &str) {
    cli.exec([
        OsStr::new("create"),
        OsStr::new("--bundle"),
        bundle.as_os_str(),
        OsStr::new(id),
    ])
    .assert_success();
}

/// Containers in each state, under one runtime.
struct Fixture {
    created: String,
    running: String,
    stopped: String,
}

fn fixture(w: &CliWorld, cli: &Cli) -> Fixture {
    let f = Fixture {
        created: w.id("created"),
        running: w.id("running"),
        stopped: w.id("stopped"),
    };
    for id in [&f.created, &f.running, &f.stopped] {
        create(cli, w.bundle.path(), id);
    }
    for id in [&f.running, &f.stopped] {
        cli.exec(["start", id]).assert_success();
    }
    let pid = cli.state(&f.stopped)["pid"].as_i64().unwrap() as i32;
    let pidfd = pidfd(pid);
    cli.exec(["kill", &f.stopped, "KILL"]).assert_success();
    wait_exit(&pidfd, "the container killed for the stopped fixture");
    assert_eq!(cli.state(&f.stopped)["status"], "stopped");
    f
}

/// One bad invocation: its arguments, the exit code runc gives, and words
/// both runtimes' messages must contain.
struct Case {
    args: Vec<String>,
    code: i32,
    needle: &'static str,
}

fn cases(w: &CliWorld, f: &Fixture) -> Vec<Case> {
    let bad_json = w.tmp().join("bad-process.json");
    std::fs::write(&bad_json, "{\"args\": [\"true\"").unwrap();
    let bundle = w.bundle.path().display().to_string();
    let c = |args: &[&str], code, needle| Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        needle,
    };
    let (created, running, stopped) = (&*f.created, &*f.running, &*f.stopped);
    vec![
        c(&["start", "no-such-ctr"], 1, "does not exist"),
        c(&["state", "no-such-ctr"], 1, "does not exist"),
        c(&["kill", "no-such-ctr", "KILL"], 1, "does not exist"),
        c(&["delete", "no-such-ctr"], 1, "does not exist"),
        c(&["pause", "no-such-ctr"], 1, "does not exist"),
        c(&["exec", "no-such-ctr", "true"], 255, "does not exist"),
        c(&["create", "--bundle", &bundle, created], 1, "exists"),
        c(&["create", "--bundle", &bundle, running], 1, "exists"),
        c(&["start", running], 1, "running"),
        c(&["start", stopped], 1, "stopped"),
        c(&["kill", stopped, "TERM"], 1, "container not running"),
        c(&["kill", running, "SIGNOPE"], 1, "SIGNOPE"),
        c(&["kill", running, "99"], 1, "invalid"),
        c(&["delete", running], 1, "running"),
        c(&["pause", stopped], 1, "container not running"),
        c(&["resume", running], 1, "container not paused"),
        c(&["exec", stopped, "true"], 255, "stopped"),
        c(
            &[
                "exec",
                "--process",
                &bad_json.display().to_string(),
                running,
            ],
            255,
            "",
        ),
        c(&["start"], 1, ""),
        c(&["kill", "--no-such-flag", running], 1, ""),
    ]
}

fn check(w: &CliWorld, cli: &Cli) {
    let f = fixture(w, cli);
    let _guards = [&f.created, &f.running, &f.stopped].map(|id| cli.guard(id));
    let statuses =
        |cli: &Cli| [&f.created, &f.running, &f.stopped].map(|id| cli.state(id)["status"].clone());
    let before = snapshot(cli.root());
    let status_before = statuses(cli);
    for case in cases(w, &f) {
        let out = cli.exec(&case.args);
        assert_eq!(
            out.code(),
            case.code,
            "{} {:?}: exit code\n{out}",
            cli.name(),
            case.args
        );
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(
            text.contains(case.needle),
            "{} {:?}: message lacks {:?}\n{out}",
            cli.name(),
            case.args,
            case.needle
        );
        assert_eq!(
            snapshot(cli.root()),
            before,
            "{} {:?} changed the state root",
            cli.name(),
            case.args
        );
    }
    assert_eq!(
        statuses(cli),
        status_before,
        "{}: statuses changed",
        cli.name()
    );
    for id in [&f.created, &f.running, &f.stopped] {
        cli.exec(["delete", "--force", id]).assert_success();
    }
}

/// Terminal-false bundle (`create` without `--console-socket` needs it).
#[test]
fn bad_invocations_fail_like_runc_and_change_nothing() {
    require_root();
    let mut w = CliWorld::new("bad");
    w.bundle.set_args(&["sleep", "100"]).set_terminal(false);
    w.bundle.write();
    // runc first: a wrong expectation shows up as such.
    check(&w, &w.runc.clone());
    check(&w, &w.corral.clone());
}
