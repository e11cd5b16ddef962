//! `state`, `list`, `kill` and `delete`: commands on containers found in
//! the state dir.

use corral::{Runtime, Status, StoredState};
use serde_json::json;

/// The OCI state document (with runc's extra fields).
fn state_json(s: &StoredState, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped { 0 } else { s.pid };
    // runc's `owner` is the owner of the state dir; corral's run as root.
    json!({
        "ociVersion": "1.2.0",
        "id": s.id,
        "pid": pid,
        "status": status.name(),
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "owner": "",
        "annotations": s.annotations,
    })
}

/// `corral state ID`.
pub fn state(rt: &Runtime, id: &str) -> anyhow::Result<i32> {
    let (s, status) = rt.state(id)?;
    println!("{}", serde_json::to_string_pretty(&state_json(&s, status))?);
    Ok(0)
}

/// `corral list`.
pub fn list(rt: &Runtime, format: &str, quiet: bool) -> anyhow::Result<i32> {
    let all = rt.list()?;
    if quiet {
        for (s, _) in &all {
            println!("{}", s.id);
        }
    } else if format == "json" {
        let docs: Vec<_> = all.iter().map(|(s, st)| state_json(s, *st)).collect();
        println!("{}", serde_json::to_string(&docs)?);
    } else {
        println!(
            "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for (s, status) in &all {
            let pid = if *status == Status::Stopped { 0 } else { s.pid };
            let bundle = s.bundle.display();
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<31} root",
                s.id,
                pid,
                status.name(),
                bundle,
                s.created
            );
        }
    }
    Ok(0)
}

/// `corral kill [--all] ID [SIGNAL]`.
pub fn kill(rt: &Runtime, id: &str, signal: Option<&str>, all: bool) -> anyhow::Result<i32> {
    let sig = crate::signal::parse(signal.unwrap_or("TERM"))?;
    if all {
        rt.kill_all_by_id(id, sig)?;
    } else {
        rt.kill_by_id(id, sig)?;
    }
    Ok(0)
}

/// `corral delete [--force] ID`. As with runc, `--force` on an id that
/// does not exist succeeds: containerd's shim deletes with `--force` when
/// it cleans up after a container that may already be gone.
pub async fn delete(rt: &Runtime, id: &str, force: bool) -> anyhow::Result<i32> {
    match rt.delete_by_id(id, force).await {
        Err(corral::Error::NotFound { .. }) if force => Ok(0),
        other => {
            other?;
            Ok(0)
        }
    }
}
