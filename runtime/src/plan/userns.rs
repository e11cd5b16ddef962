//! `linux.uidMappings` / `linux.gidMappings`: validated and rendered as the
//! text the parent writes to `/proc/<pid>/uid_map` and `gid_map` after
//! `clone3` and before the child execs `corral-init` (see `crate::userns`).
//!
//! Owns the checks the kernel would otherwise make with a bare `EINVAL`
//! (empty ranges, overflow, overlap, too many lines), so that the error
//! names the field. It does not decide `setgroups` (that depends on who
//! runs the runtime, see `crate::userns`).

use oci_spec::runtime::{Linux, LinuxIdMapping};

use crate::error::{Error, Result};

/// The kernel's limit on lines in `uid_map` (user_namespaces(7), 340 since
/// Linux 4.15).
const MAX_LINES: usize = 340;

/// The maps to write for a new user namespace, in `uid_map` syntax
/// (`"<inside> <outside> <count>\n"` per range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdMaps {
    /// Contents for `/proc/<pid>/uid_map`.
    pub uid_map: String,
    /// Contents for `/proc/<pid>/gid_map`.
    pub gid_map: String,
}

/// The maps for a new user namespace, or `None` without one. Mappings
/// without a new user namespace are refused, as runc does, and so is a new
/// user namespace without them (its processes would all be the overflow
/// id, with no capabilities after the exec of the init).
pub(crate) fn plan(linux: &Linux, new_userns: bool) -> Result<Option<IdMaps>> {
    let uids = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gids = linux.gid_mappings().as_deref().unwrap_or(&[]);
    if !new_userns {
        if !uids.is_empty() || !gids.is_empty() {
            let field = if uids.is_empty() {
                "linux.gidMappings"
            } else {
                "linux.uidMappings"
            };
            return Err(Error::invalid(
                field,
                "id mappings need a new user namespace in linux.namespaces",
            ));
        }
        return Ok(None);
    }
    Ok(Some(IdMaps {
        uid_map: render("linux.uidMappings", uids, true)?,
        gid_map: render("linux.gidMappings", gids, true)?,
    }))
}

/// `ranges` in `uid_map` syntax, checked; `field` names them in errors.
/// `need_root`: id 0 must be mapped (a container's own namespace, where
/// the init runs as root; not the namespace of an idmapped mount).
pub(crate) fn render(field: &str, ranges: &[LinuxIdMapping], need_root: bool) -> Result<String> {
    if ranges.is_empty() {
        return Err(Error::invalid(
            field,
            "a new user namespace needs at least one mapping",
        ));
    }
    if ranges.len() > MAX_LINES {
        return Err(Error::invalid(
            field,
            format!(
                "{} ranges, the kernel takes at most {MAX_LINES}",
                ranges.len()
            ),
        ));
    }
    if need_root && !ranges.iter().any(|m| m.container_id() == 0) {
        return Err(Error::invalid(
            field,
            "id 0 must be mapped: the init runs as root in the namespace",
        ));
    }
    let mut inside: Vec<(u64, u64)> = Vec::new();
    let mut outside: Vec<(u64, u64)> = Vec::new();
    let mut text = String::new();
    for (i, m) in ranges.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(Error::invalid(at, "size is 0"));
        }
        let size = u64::from(m.size());
        let (cid, hid) = (u64::from(m.container_id()), u64::from(m.host_id()));
        if cid + size > 1 << 32 || hid + size > 1 << 32 {
            return Err(Error::invalid(at, "range runs past 2^32"));
        }
        if overlaps(&inside, cid, size) {
            return Err(Error::invalid(at, "containerID range overlaps another"));
        }
        if overlaps(&outside, hid, size) {
            return Err(Error::invalid(at, "hostID range overlaps another"));
        }
        inside.push((cid, size));
        outside.push((hid, size));
        text.push_str(&format!("{cid} {hid} {size}\n"));
    }
    Ok(text)
}

fn overlaps(seen: &[(u64, u64)], start: u64, size: u64) -> bool {
    seen.iter().any(|&(s, n)| start < s + n && s < start + size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxIdMappingBuilder};

    fn map(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(n)
            .build()
            .unwrap()
    }

    fn linux(uids: Vec<LinuxIdMapping>, gids: Vec<LinuxIdMapping>) -> Linux {
        LinuxBuilder::default()
            .uid_mappings(uids)
            .gid_mappings(gids)
            .build()
            .unwrap()
    }

    #[test]
    fn maps_render_one_line_per_range() {
        let l = linux(
            vec![map(0, 1000, 1), map(1, 100000, 65536)],
            vec![map(0, 1000, 1)],
        );
        let got = plan(&l, true).unwrap().unwrap();
        assert_eq!(got.uid_map, "0 1000 1\n1 100000 65536\n");
        assert_eq!(got.gid_map, "0 1000 1\n");
    }

    #[test]
    fn bad_mappings_name_the_field() {
        let err = |l: Linux, userns| plan(&l, userns).unwrap_err().to_string();
        assert!(err(linux(vec![map(0, 1, 1)], vec![]), false).contains("linux.uidMappings"));
        assert!(err(linux(vec![map(0, 1, 1)], vec![]), true).contains("linux.gidMappings"));
        let zero = err(linux(vec![map(0, 1, 0)], vec![map(0, 1, 1)]), true);
        assert!(
            zero.contains("linux.uidMappings[0]") && zero.contains("size is 0"),
            "{zero}"
        );
        let overlap = err(
            linux(vec![map(0, 1, 10), map(5, 100, 1)], vec![map(0, 1, 1)]),
            true,
        );
        assert!(overlap.contains("linux.uidMappings[1]"), "{overlap}");
        let wrap = err(
            linux(vec![map(0, 1, 1), map(1, u32::MAX, 2)], vec![map(0, 1, 1)]),
            true,
        );
        let no_root = err(linux(vec![map(1, 1, 1)], vec![map(0, 1, 1)]), true);
        assert!(no_root.contains("id 0 must be mapped"), "{no_root}");
        assert!(wrap.contains("2^32"), "{wrap}");
    }

    #[test]
    fn no_userns_no_mappings_is_none() {
        assert_eq!(plan(&linux(vec![], vec![]), false).unwrap(), None);
    }
}
