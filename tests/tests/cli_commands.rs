//! The commands real clients call beyond the lifecycle: `pause`/`resume`
//! as `state` reports them, `ps`, `kill --all`, `delete` of a stopped
//! container, `list` formats, `features`, `update -r`, and error lines in
//! `--log --log-format json`.

use std::ffi::OsStr;

use corral_tests::cli::*;
use corral_tests::require_root;

fn pid_of(state: &serde_json::Value) -> i32 {
    i32::try_from(state["pid"].as_i64().expect("numeric pid")).expect("pid fits i32")
}

/// Terminal-false bundle (`create` without `--console-socket` needs it).
#[test]
fn paused_ps_kill_all_and_delete_of_a_stopped_container() {
    require_root();
    let mut w = CliWorld::new("cmds");
    w.bundle
        .set_args(&["sh", "-c", "sleep 100 & sleep 100 & wait"])
        .set_terminal(false);
    let cli = &w.corral;
    let id = w.id("cmds");
    let _guard = cli.guard(&id);
    cli.exec([
        OsStr::new("create"),
        OsStr::new("--bundle"),
        w.bundle.path().as_os_str(),
        OsStr::new(&id),
    ])
    .assert_success();
    cli.exec(["start", &id]).assert_success();
    let pid = pid_of(&cli.state(&id));
    let init = pidfd(pid);

    cli.exec(["pause", &id]).assert_success();
    assert_eq!(cli.state(&id)["status"], "paused");
    cli.exec(["pause", &id]).assert_failure_mentioning("paused");
    cli.exec(["resume", &id]).assert_success();
    assert_eq!(cli.state(&id)["status"], "running");

    // Both sleeps and the shell: wait for the shell to have forked.
    let mut pids = Vec::new();
    for _ in 0..200 {
        let out = cli.exec(["ps", "--format", "json", &id]);
        out.assert_success();
        pids = serde_json::from_str::<Vec<i32>>(&out.stdout).expect("ps json is a pid array");
        if pids.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&pid));
    let table = cli.exec(["ps", &id]);
    table.assert_success();
    let lines = table.lines();
    assert!(lines[0].contains("PID"), "{table}");
    assert_eq!(lines.len(), 4, "header and three rows\n{table}");
    let custom = cli.exec(["ps", &id, "-o", "pid,comm"]);
    assert!(
        custom
            .lines()
            .iter()
            .filter(|l| l.contains("sleep"))
            .count()
            == 2,
        "{custom}"
    );

    let listed = cli.exec(["list", "--format", "json"]);
    let all: serde_json::Value = serde_json::from_str(&listed.stdout).expect("list json");
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "{listed}"
    );
    assert!(cli.exec(["list", "-q"]).lines().contains(&id));

    let resources = w.tmp().join("resources.json");
    std::fs::write(&resources, r#"{"pids": {"limit": 50}}"#).unwrap();
    cli.exec([
        OsStr::new("update"),
        OsStr::new("-r"),
        resources.as_os_str(),
        OsStr::new(&id),
    ])
    .assert_success();

    let children: Vec<_> = pids
        .iter()
        .filter(|p| **p != pid)
        .map(|p| pidfd(*p))
        .collect();
    cli.exec(["kill", "--all", &id, "KILL"]).assert_success();
    wait_exit(&init, "the init after kill --all");
    for child in &children {
        wait_exit(child, "a child after kill --all");
    }
    assert_eq!(cli.state(&id)["status"], "stopped");
    cli.exec(["kill", "--all", &id, "KILL"]).assert_success();
    cli.exec(["delete", &id]).assert_success();
    cli.exec(["state", &id])
        .assert_failure_mentioning("does not exist");
    cli.exec(["delete", "--force", &id]).assert_success();
}

#[test]
fn errors_reach_the_log_as_logrus_json_lines() {
    require_root();
    let w = CliWorld::new("log");
    let log = w.tmp().join("log.json");
    let out = w.corral.exec([
        OsStr::new("--log"),
        log.as_os_str(),
        OsStr::new("--log-format"),
        OsStr::new("json"),
        OsStr::new("state"),
        OsStr::new("no-such-ctr"),
    ]);
    assert_eq!(out.code(), 1, "{out}");
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("does not exist"),
        "{line}"
    );
    // RFC 3339, as Go's time.Time decodes it: 2024-05-01T12:00:00Z.
    let time = line["time"].as_str().unwrap();
    assert_eq!(time.len(), 20, "{time}");
    assert!(time.ends_with('Z') && &time[10..11] == "T", "{time}");
}

#[test]
fn features_is_the_runtime_spec_document() {
    require_root();
    let w = CliWorld::new("features");
    let out = w.corral.exec(["features"]);
    out.assert_success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("features json");
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    let namespaces = doc["linux"]["namespaces"].as_array().unwrap();
    assert!(namespaces.iter().any(|n| n == "pid"));
    assert_eq!(doc["linux"]["cgroup"]["systemd"], false);
    assert_eq!(doc["linux"]["seccomp"]["enabled"], true);
}

/// Signals the caller ignored are not passed on to the workload: the
/// shell that starts `corral run` ignores three, and the process in the
/// container sees none ignored and none blocked (`/proc/self/status`).
#[test]
fn signals_ignored_by_the_caller_are_default_in_the_container() {
    require_root();
    let mut w = CliWorld::new("sigign");
    w.bundle
        .set_args(&["cat", "/proc/self/status"])
        .set_terminal(false);
    let id = w.id("sigign");
    let _guard = w.corral.guard(&id);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' USR1 HUP PIPE; exec \"$0\" \"$@\"")
        .arg(corral_bin())
        .arg("--root")
        .arg(w.corral.root())
        .args([OsStr::new("run"), OsStr::new("--bundle")])
        .arg(w.bundle.path())
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_owned()
    };
    assert_eq!(field("SigIgn:"), "0000000000000000", "{text}");
    assert_eq!(field("SigBlk:"), "0000000000000000", "{text}");
}
