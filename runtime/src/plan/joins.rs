//! Namespaces joined by `path`, the time namespace and `linux.timeOffsets`:
//! which namespaces `clone3` creates, which the cloned child joins with
//! `setns`, and which it `unshare`s.
//!
//! Where each happens, and why (see also docs/spec-coverage.md):
//! - A **pid** namespace is joined by the parent's cloning thread just
//!   around `clone3` (`sys::spawn_init`): `setns(CLONE_NEWPID)` only changes
//!   the namespace of the caller's *children*, so joining it in the child
//!   would leave the init outside; joining in the thread that clones makes
//!   the child a member from birth, with no extra fork.
//! - Every **other** type is joined by the child between `clone3` and the
//!   exec of the init (single-threaded, as `setns` of a mount or user
//!   namespace requires), a joined user namespace first, then the child
//!   becomes uid 0 in it.
//! - A new **time** namespace is `unshare`d by the child, which writes the
//!   offsets to `/proc/self/timens_offsets` (allowed only before any process
//!   is in it) and enters it with the exec of the init (time_namespaces(7)).
//!
//! Refused, naming the entry: mixing a new user namespace with joined ones
//! (they would be joined without the host privileges `setns` needs), and a
//! joined user namespace with new ones other than time (they would be
//! owned by the host's user namespace, where the init has no privilege).

use std::path::PathBuf;

use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::error::{Error, Result};

/// How the child gets into its namespaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Joins {
    /// `CLONE_NEW*` bits for `clone3` (never `CLONE_NEWTIME`).
    pub clone_flags: u64,
    /// Joined namespaces other than pid, a user namespace first:
    /// (`CLONE_NEW*` type, path, field name for errors).
    pub join: Vec<(i32, PathBuf, String)>,
    /// A pid namespace to join around `clone3`, with its field name.
    pub join_pid: Option<(PathBuf, String)>,
    /// Whether the child must become uid/gid 0 after joining (a joined
    /// user namespace).
    pub joined_user: bool,
    /// `Some(offsets)` to unshare a new time namespace and write `offsets`
    /// (`timens_offsets` syntax, maybe empty) in it.
    pub new_time: Option<String>,
    /// Whether a new network namespace is made (its `lo` goes up).
    pub new_network: bool,
}

/// Plans the namespace entries of `linux` (already checked for duplicates).
pub(crate) fn plan(linux: &Linux) -> Result<Joins> {
    let mut out = Joins::default();
    let mut new_user = false;
    let mut new_others = Vec::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let typ = ns.typ();
        let flag = typ as u64;
        match ns.path() {
            Some(path) => {
                if !path.is_absolute() {
                    return Err(Error::invalid(
                        format!("{field}.path"),
                        format!("{path:?} is not absolute"),
                    ));
                }
                let entry = (path.clone(), format!("{field}.path"));
                match typ {
                    LinuxNamespaceType::Pid => out.join_pid = Some(entry),
                    LinuxNamespaceType::User => {
                        out.joined_user = true;
                        out.join.insert(0, (flag as i32, entry.0, entry.1));
                    }
                    _ => out.join.push((flag as i32, entry.0, entry.1)),
                }
            }
            None => match typ {
                LinuxNamespaceType::Time => out.new_time = Some(String::new()),
                LinuxNamespaceType::User => {
                    new_user = true;
                    out.clone_flags |= flag;
                }
                _ => {
                    new_others.push(field);
                    out.new_network |= typ == LinuxNamespaceType::Network;
                    out.clone_flags |= flag;
                }
            },
        }
    }
    let joined_any = !out.join.is_empty() || out.join_pid.is_some();
    if new_user && joined_any {
        let field = out
            .join_pid
            .as_ref()
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| out.join[0].2.clone());
        return Err(Error::unsupported(
            field,
            "joining a namespace together with a new user namespace",
        ));
    }
    if out.joined_user {
        if let Some(field) = new_others.first() {
            return Err(Error::unsupported(
                field.clone(),
                "a new namespace together with a joined user namespace (it would belong to the \
                 host's user namespace)",
            ));
        }
    }
    out.new_time = time_offsets(linux, out.new_time.is_some())?;
    Ok(out)
}

/// `linux.timeOffsets` as `timens_offsets` text; needs a new time namespace.
fn time_offsets(linux: &Linux, new_time: bool) -> Result<Option<String>> {
    let offsets = linux.time_offsets().as_ref().filter(|o| !o.is_empty());
    let Some(offsets) = offsets else {
        return Ok(new_time.then(String::new));
    };
    if !new_time {
        return Err(Error::invalid(
            "linux.timeOffsets",
            "offsets need a new time namespace in linux.namespaces",
        ));
    }
    let mut keys: Vec<_> = offsets.keys().collect();
    keys.sort();
    let mut text = String::new();
    for key in keys {
        if key != "monotonic" && key != "boottime" {
            return Err(Error::invalid(
                format!("linux.timeOffsets[{key:?}]"),
                "only monotonic and boottime clocks can be offset",
            ));
        }
        let o = &offsets[key];
        let nanos = o.nanosecs().unwrap_or(0);
        if nanos >= 1_000_000_000 {
            return Err(Error::invalid(
                format!("linux.timeOffsets[{key:?}].nanosecs"),
                "must be below 1000000000",
            ));
        }
        text.push_str(&format!("{key} {} {nanos}\n", o.secs().unwrap_or(0)));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pid_is_joined_around_clone_and_user_first_in_the_child() {
        let j = plan(&linux(json!({"namespaces": [
            {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "pid", "path": "/proc/1/ns/pid"},
            {"type": "user", "path": "/proc/1/ns/user"},
            {"type": "time"}
        ]})))
        .unwrap();
        assert_eq!(j.clone_flags, 0);
        assert_eq!(j.join_pid.unwrap().0, PathBuf::from("/proc/1/ns/pid"));
        assert_eq!(j.join[0].0, libc::CLONE_NEWUSER);
        assert_eq!(j.join[1].2, "linux.namespaces[0].path");
        assert!(j.joined_user);
        assert_eq!(j.new_time.as_deref(), Some(""));
    }

    #[test]
    fn offsets_render_and_need_a_time_namespace() {
        let j = plan(&linux(json!({
            "namespaces": [{"type": "time"}, {"type": "mount"}],
            "timeOffsets": {"monotonic": {"secs": 5}, "boottime": {"secs": -1, "nanosecs": 3}}
        })))
        .unwrap();
        assert_eq!(j.new_time.unwrap(), "boottime -1 3\nmonotonic 5 0\n");
        assert_eq!(j.clone_flags, libc::CLONE_NEWNS as u64);
        let err = plan(&linux(json!({"timeOffsets": {"monotonic": {"secs": 5}}}))).unwrap_err();
        assert!(err.to_string().contains("linux.timeOffsets"), "{err}");
        let err = plan(&linux(json!({
            "namespaces": [{"type": "time"}],
            "timeOffsets": {"realtime": {"secs": 5}}
        })))
        .unwrap_err();
        assert!(err.to_string().contains("realtime"), "{err}");
    }

    #[test]
    fn mixing_new_and_joined_user_namespaces_is_refused() {
        let err = plan(&linux(json!({"namespaces": [
            {"type": "user"}, {"type": "network", "path": "/proc/1/ns/net"}
        ]})))
        .unwrap_err();
        assert!(
            err.to_string().contains("linux.namespaces[1].path"),
            "{err}"
        );
        let err = plan(&linux(json!({"namespaces": [
            {"type": "user", "path": "/proc/1/ns/user"}, {"type": "mount"}
        ]})))
        .unwrap_err();
        assert!(err.to_string().contains("linux.namespaces[1]"), "{err}");
    }
}
