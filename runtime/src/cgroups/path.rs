//! Where a container's cgroup goes: `linux.cgroupsPath` (absolute,
//! relative, empty, or systemd's `slice:prefix:name`) turned into a path
//! inside each hierarchy. Pure: no filesystem access.
//!
//! - absolute (`/a/b`): from the root of each hierarchy;
//! - relative (`a/b`): under the runtime's own cgroup in each hierarchy;
//! - empty or absent: `corral/<id>` under the runtime's own cgroup;
//! - `slice:prefix:name` (what podman and containerd pass with a systemd
//!   driver): mapped onto cgroupfs the way systemd lays units out,
//!   `/<expanded slice>/<prefix>-<name>.scope`. No systemd is asked to do
//!   anything: corral writes cgroupfs itself.

use std::path::{Component, Path};

use crate::error::{Error, Result};

const FIELD: &str = "linux.cgroupsPath";

/// A cgroup location, before it is joined to a hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// From the hierarchy's root (no leading `/`).
    Absolute(String),
    /// Under the runtime's own cgroup.
    Relative(String),
}

impl Placement {
    /// The directory in a hierarchy mounted at `mount_point` where this
    /// process's cgroup is `own_path`.
    pub fn dir_in(&self, mount_point: &Path, own_path: &str) -> std::path::PathBuf {
        match self {
            Placement::Absolute(p) => mount_point.join(p),
            Placement::Relative(p) => mount_point.join(own_path.trim_start_matches('/')).join(p),
        }
    }
}

/// The placement for container `id` from `linux.cgroupsPath`.
pub(crate) fn placement(id: &str, cgroups_path: Option<&Path>) -> Result<Placement> {
    let raw = match cgroups_path {
        None => return Ok(Placement::Relative(format!("corral/{id}"))),
        Some(p) => p
            .to_str()
            .ok_or_else(|| Error::invalid(FIELD, format!("{p:?} is not UTF-8")))?,
    };
    if raw.is_empty() {
        return Ok(Placement::Relative(format!("corral/{id}")));
    }
    if !raw.starts_with('/') && raw.matches(':').count() == 2 {
        return systemd(raw).map(Placement::Absolute);
    }
    let clean = checked(raw)?;
    if raw.starts_with('/') {
        Ok(Placement::Absolute(clean))
    } else {
        Ok(Placement::Relative(clean))
    }
}

/// `a/b//c/` → `a/b/c`; refuses `..`, `.`, and a path that names the
/// root itself (a container may not own its runtime's cgroup).
fn checked(raw: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(p) => {
                parts.push(p.to_str().expect("components of a str are str").to_owned())
            }
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(
                    FIELD,
                    format!("{raw:?}: `.` and `..` are not allowed"),
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(FIELD, format!("{raw:?} names no cgroup")));
    }
    Ok(parts.join("/"))
}

/// `slice:prefix:name` → `<expanded slice>/<prefix>-<name>.scope`, where
/// `a-b-c.slice` expands to `a.slice/a-b.slice/a-b-c.slice` (systemd's
/// slice nesting) and an empty slice means `system.slice`.
fn systemd(raw: &str) -> Result<String> {
    let mut it = raw.splitn(3, ':');
    let (slice, prefix, name) = (
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    );
    let bad = |why: &str| Error::invalid(FIELD, format!("{raw:?}: {why}"));
    if name.is_empty() {
        return Err(bad("systemd form `slice:prefix:name` needs a name"));
    }
    let unit_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.-\\@".contains(&b))
    };
    if !unit_ok(prefix) || !unit_ok(name) || name.contains(':') {
        return Err(bad("unit names may hold only [A-Za-z0-9:_.\\-@]"));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let stem = slice
        .strip_suffix(".slice")
        .ok_or_else(|| bad("the slice must end in `.slice`"))?;
    if stem.contains('/') || !unit_ok(stem) {
        return Err(bad("malformed slice name"));
    }
    let mut dirs = Vec::new();
    if stem != "-" {
        if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
            return Err(bad("malformed slice name"));
        }
        let mut acc = String::new();
        for part in stem.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            dirs.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    dirs.push(unit);
    Ok(dirs.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Placement> {
        placement("c1", Some(Path::new(s)))
    }

    #[test]
    fn empty_or_absent_is_corral_id_under_own_cgroup() {
        assert_eq!(
            placement("c1", None).unwrap(),
            Placement::Relative("corral/c1".into())
        );
        assert_eq!(p("").unwrap(), Placement::Relative("corral/c1".into()));
    }

    #[test]
    fn absolute_and_relative_paths_are_normalised() {
        assert_eq!(p("/a//b/").unwrap(), Placement::Absolute("a/b".into()));
        assert_eq!(p("x/y").unwrap(), Placement::Relative("x/y".into()));
        let dir = p("x")
            .unwrap()
            .dir_in(Path::new("/sys/fs/cgroup/memory"), "/k/l");
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/k/l/x"));
        let dir = p("/x")
            .unwrap()
            .dir_in(Path::new("/sys/fs/cgroup/memory"), "/k");
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/x"));
    }

    #[test]
    fn dot_dot_and_the_root_itself_are_refused() {
        for bad in ["/a/../b", "../x", "/", "./a"] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid linux.cgroupsPath"), "{bad}: {e}");
        }
    }

    #[test]
    fn systemd_form_maps_onto_cgroupfs() {
        assert_eq!(
            p("machine-pod.slice:libpod:abc").unwrap(),
            Placement::Absolute("machine.slice/machine-pod.slice/libpod-abc.scope".into())
        );
        assert_eq!(
            p(":cri:xyz").unwrap(),
            Placement::Absolute("system.slice/cri-xyz.scope".into())
        );
        assert_eq!(
            p("-.slice::n").unwrap(),
            Placement::Absolute("n.scope".into())
        );
        assert!(p("nosuffix:a:b").is_err());
        assert!(p("a.slice:a:").is_err());
        assert!(p("a.slice:x/y:n").is_err());
    }
}
