//! The parent's half of a new user namespace: writing `setgroups`,
//! `gid_map` and `uid_map` of the cloned child, which waits (on a pipe, in
//! `sys::child_after_clone`) until they are written, so that the exec of
//! `corral-init` runs as a mapped uid 0 and keeps the full capability set of
//! the namespace (capabilities(7), "Effect of user ID changes").
//!
//! Owns the order and the `setgroups` decision; the maps themselves are
//! validated in `plan::userns`. Rootfs ownership is the user's job, as with
//! runc.

use std::io::Write;

use rustix::process::{Pid, geteuid};

use crate::error::{Error, Result};
use crate::plan::IdMaps;

/// Whether `setgroups` must be `deny` before `gid_map` is written: the
/// kernel requires it when the writer lacks `CAP_SETGID` in the parent
/// namespace (user_namespaces(7)), that is, for a runtime that is not root.
/// Root keeps `allow`, so the workload's `additionalGids` can be set.
fn deny_setgroups() -> bool {
    !geteuid().is_root()
}

/// Writes the maps of the child `pid` (blocking: three small procfs writes
/// while the child waits; no await point could help).
pub(crate) fn write_id_maps(pid: Pid, maps: &IdMaps) -> Result<()> {
    write_maps(pid, maps, "linux")
}

/// [`write_id_maps`] for maps that come from the spec's object `owner`
/// (`linux`, `mounts[3]`), which errors name.
pub(crate) fn write_maps(pid: Pid, maps: &IdMaps, owner: &str) -> Result<()> {
    let dir = format!("/proc/{}", pid.as_raw_nonzero());
    let (uids, gids) = (
        format!("{owner}.uidMappings"),
        format!("{owner}.gidMappings"),
    );
    if deny_setgroups() {
        write_proc(&dir, "setgroups", "deny", &gids)?;
    }
    write_proc(&dir, "gid_map", &maps.gid_map, &gids)?;
    write_proc(&dir, "uid_map", &maps.uid_map, &uids)
}

/// One `write(2)`: the kernel takes a map in a single write only.
fn write_proc(dir: &str, file: &str, text: &str, field: &str) -> Result<()> {
    let path = format!("{dir}/{file}");
    let result = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    result.map_err(|e| Error::sys(format!("write {path:?} for {field}"), e))
}
