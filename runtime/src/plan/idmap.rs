//! Idmapped bind mounts: the `idmap` and `ridmap` options and the OCI 1.2
//! per-mount `uidMappings`/`gidMappings`. Decides which mounts the runtime
//! makes itself as detached idmapped trees (see `crate::idmap`) and with
//! which user namespace's mappings; the init only moves them into place.
//!
//! The rules are runc 1.2's:
//! - a mount is idmapped when it has `idmap` or `ridmap`, or mappings of
//!   its own (which alone mean `idmap`);
//! - only bind mounts can be idmapped;
//! - the mapping is the mount's own `uidMappings` and `gidMappings` (both,
//!   or neither), else the container's user namespace; with neither there
//!   is nothing to map with and the mount is refused;
//! - `ridmap` idmaps every mount of an `rbind`'s tree, `idmap` only the top.
//!
//! Pure: what it returns is carried out by `crate::idmap`.

use std::path::PathBuf;

use corral_protocol::MountOp;
use oci_spec::runtime::Mount;

use super::userns::{IdMaps, render};
use crate::error::{Error, Result};

/// One idmapped bind for the runtime to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdmapRequest {
    /// Index of its op in `InitSpec::mounts` (the init waits for the fd
    /// when it reaches that op).
    pub op: u32,
    /// `mounts[N]`, for errors.
    pub field: String,
    /// The host path to clone (absolute).
    pub source: PathBuf,
    /// `rbind`: clone the mounts below `source` too.
    pub tree: bool,
    /// `ridmap`: idmap every mount of the clone, not only its top.
    pub recursive: bool,
    /// Whose mappings.
    pub userns: IdmapUserns,
}

/// The user namespace whose mappings an idmapped mount takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IdmapUserns {
    /// The container's own (new or joined).
    Container,
    /// One made for the mount with these maps.
    Own(IdMaps),
}

/// What the container's user namespace is, for [`plan`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContainerUserns<'a> {
    /// A new or joined user namespace exists.
    pub exists: bool,
    /// The maps of a new one.
    pub maps: Option<&'a IdMaps>,
}

/// The idmap request for OCI mount `index`, translated into `op`, or
/// `None` when it is not idmapped. `op_index` is `op`'s place in the init's
/// mount list.
pub(crate) fn plan(
    index: usize,
    mount: &Mount,
    op: &MountOp,
    op_index: usize,
    userns: ContainerUserns<'_>,
) -> Result<Option<IdmapRequest>> {
    let field = format!("mounts[{index}]");
    let options = mount.options().as_deref().unwrap_or(&[]);
    let option = options
        .iter()
        .rfind(|o| *o == "idmap" || *o == "ridmap")
        .map(String::as_str);
    let uids = mount.uid_mappings().as_deref();
    let gids = mount.gid_mappings().as_deref();
    if option.is_none() && uids.is_none() && gids.is_none() {
        return Ok(None);
    }
    let named = match option {
        Some(_) => format!("{field}.options"),
        None if uids.is_some() => format!("{field}.uidMappings"),
        None => format!("{field}.gidMappings"),
    };
    if op.fstype.is_some() || op.flags & libc::MS_BIND == 0 {
        return Err(Error::invalid(
            named,
            "idmapped mounts are for bind mounts only",
        ));
    }
    let userns = match (
        uids.filter(|m| !m.is_empty()),
        gids.filter(|m| !m.is_empty()),
    ) {
        (Some(uids), Some(gids)) => {
            let maps = IdMaps {
                uid_map: render(&format!("{field}.uidMappings"), uids, false)?,
                gid_map: render(&format!("{field}.gidMappings"), gids, false)?,
            };
            if userns.maps == Some(&maps) {
                // The container's namespace already maps exactly so.
                IdmapUserns::Container
            } else {
                IdmapUserns::Own(maps)
            }
        }
        (None, None) if uids.is_none() && gids.is_none() => {
            if !userns.exists {
                return Err(Error::invalid(
                    named,
                    "an idmapped mount without uidMappings and gidMappings takes the \
                     container's user namespace mappings, and it has no user namespace",
                ));
            }
            IdmapUserns::Container
        }
        (uids, _) => {
            let missing = if uids.is_none() {
                "uidMappings"
            } else {
                "gidMappings"
            };
            return Err(Error::invalid(
                format!("{field}.{missing}"),
                "an idmapped mount needs both uidMappings and gidMappings (or neither)",
            ));
        }
    };
    let source = op
        .source
        .as_ref()
        .expect("a translated bind has a source")
        .as_path()
        .to_owned();
    Ok(Some(IdmapRequest {
        op: u32::try_from(op_index).map_err(|_| Error::invalid(&field, "too many mounts"))?,
        field,
        source,
        tree: op.flags & libc::MS_REC != 0,
        recursive: option == Some("ridmap"),
        userns,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder, MountBuilder};

    fn map(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(n)
            .build()
            .unwrap()
    }

    fn bind_op(flags: u64) -> MountOp {
        MountOp {
            source: Some("/src".into()),
            destination: "/dst".into(),
            fstype: None,
            flags,
            propagation: 0,
            data: None,
            recursive: None,
            detached: false,
            copy_up: false,
        }
    }

    fn mount(
        options: &[&str],
        uids: Option<Vec<LinuxIdMapping>>,
        gids: Option<Vec<LinuxIdMapping>>,
    ) -> Mount {
        let mut m = MountBuilder::default()
            .destination("/dst")
            .typ("bind")
            .source("/src")
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap();
        // The builder refuses one without the other; a config.json need not.
        m.set_uid_mappings(uids);
        m.set_gid_mappings(gids);
        m
    }

    const NO_USERNS: ContainerUserns<'static> = ContainerUserns {
        exists: false,
        maps: None,
    };

    #[test]
    fn idmap_takes_the_containers_namespace_and_ridmap_recurses() {
        let maps = IdMaps {
            uid_map: "0 100000 65536\n".into(),
            gid_map: "0 100000 65536\n".into(),
        };
        let ns = ContainerUserns {
            exists: true,
            maps: Some(&maps),
        };
        let flags = libc::MS_BIND | libc::MS_REC;
        let req = plan(
            3,
            &mount(&["rbind", "ridmap"], None, None),
            &bind_op(flags),
            5,
            ns,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            req,
            IdmapRequest {
                op: 5,
                field: "mounts[3]".into(),
                source: "/src".into(),
                tree: true,
                recursive: true,
                userns: IdmapUserns::Container,
            }
        );
        let req = plan(
            0,
            &mount(&["idmap"], None, None),
            &bind_op(libc::MS_BIND),
            0,
            ns,
        )
        .unwrap()
        .unwrap();
        assert!(!req.tree && !req.recursive);
        // Own mappings equal to the container's reuse its namespace.
        let same = mount(
            &["idmap"],
            Some(vec![map(0, 100000, 65536)]),
            Some(vec![map(0, 100000, 65536)]),
        );
        let req = plan(0, &same, &bind_op(libc::MS_BIND), 0, ns)
            .unwrap()
            .unwrap();
        assert_eq!(req.userns, IdmapUserns::Container);
        assert_eq!(
            plan(0, &mount(&["rbind"], None, None), &bind_op(flags), 0, ns).unwrap(),
            None
        );
    }

    #[test]
    fn own_mappings_alone_mean_idmap_and_need_no_container_userns() {
        let m = mount(
            &["bind"],
            Some(vec![map(0, 2000, 10)]),
            Some(vec![map(5, 3000, 1)]),
        );
        let req = plan(1, &m, &bind_op(libc::MS_BIND), 1, NO_USERNS)
            .unwrap()
            .unwrap();
        assert!(!req.recursive);
        assert_eq!(
            req.userns,
            IdmapUserns::Own(IdMaps {
                uid_map: "0 2000 10\n".into(),
                gid_map: "5 3000 1\n".into(),
            })
        );
    }

    #[test]
    fn bad_idmapped_mounts_name_their_field() {
        let err = |m: &Mount, op: &MountOp, ns| plan(2, m, op, 0, ns).unwrap_err().to_string();
        let bind = bind_op(libc::MS_BIND);
        let e = err(&mount(&["idmap"], None, None), &bind, NO_USERNS);
        assert!(
            e.contains("mounts[2].options") && e.contains("no user namespace"),
            "{e}"
        );
        let e = err(
            &mount(&[], Some(vec![map(0, 1, 1)]), None),
            &bind,
            NO_USERNS,
        );
        assert!(e.contains("mounts[2].gidMappings"), "{e}");
        let e = err(
            &mount(&[], None, Some(vec![map(0, 1, 1)])),
            &bind,
            NO_USERNS,
        );
        assert!(e.contains("mounts[2].uidMappings"), "{e}");
        let e = err(
            &mount(&[], Some(vec![map(0, 1, 0)]), Some(vec![map(0, 1, 1)])),
            &bind,
            NO_USERNS,
        );
        assert!(e.contains("mounts[2].uidMappings[0]"), "{e}");
        let mut tmpfs = bind_op(0);
        tmpfs.fstype = Some("tmpfs".into());
        let ns = ContainerUserns {
            exists: true,
            maps: None,
        };
        let e = err(&mount(&["ridmap"], None, None), &tmpfs, ns);
        assert!(
            e.contains("mounts[2].options") && e.contains("bind mounts only"),
            "{e}"
        );
        let e = err(
            &mount(&[], Some(vec![map(0, 1, 1)]), Some(vec![map(0, 1, 1)])),
            &tmpfs,
            ns,
        );
        assert!(e.contains("mounts[2].uidMappings"), "{e}");
    }
}
