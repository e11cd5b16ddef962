//! Per-container cgroups on v1, hybrid and v2 hosts: where a container's
//! cgroup goes ([`path`]), what `linux.resources` writes there ([`v1`],
//! [`v2`], pure plans), making and removing the directories and moving
//! the child in ([`tree`]), pause and resume ([`freezer`]), usage and OOM
//! counters ([`stats`]).
//!
//! The mode is detected from the host's mounts (`cgroup_layout`), never
//! assumed:
//! - a cgroup2 mount at `/sys/fs/cgroup` is a v2 host;
//! - otherwise every v1 controller hierarchy is used (named hierarchies
//!   such as `name=systemd` and, on a hybrid host, the controller-less
//!   `unified` mount are left alone);
//! - no cgroup mounts at all: containers get no cgroup, and resources are
//!   refused.
//!
//! `RuntimeBuilder::cgroup_v2_root` overrides the detection (tests use it
//! to drive the v2 code on a hybrid host's `unified` mount).
//!
//! This module does not decide when things happen: `container` calls it.

pub(crate) mod by_id;
pub(crate) mod device_program;
pub(crate) mod events;
pub(crate) mod freezer;
pub(crate) mod path;
pub(crate) mod spare;
pub(crate) mod stats;
pub(crate) mod tree;
pub(crate) mod v1;
pub(crate) mod v2;
pub(crate) mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::cgroup_layout::Layout;
use crate::error::{Error, Result};
use path::Placement;
use spare::Spares;
use write::Write;

pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

/// How this runtime's containers get cgroups.
#[derive(Clone, Debug)]
pub(crate) enum Setup {
    /// v1 controller hierarchies.
    V1(Vec<V1Hierarchy>),
    /// One cgroup2 hierarchy: `mount_point` and this process's cgroup in it.
    V2 {
        mount_point: PathBuf,
        own_path: String,
    },
    /// No cgroup filesystem: no per-container cgroups.
    None,
}

/// A mounted v1 hierarchy and the controllers it carries.
#[derive(Clone, Debug)]
pub(crate) struct V1Hierarchy {
    controllers: Vec<String>,
    mount_point: PathBuf,
    own_path: String,
}

impl Setup {
    /// From the host's mounts.
    pub fn detect(layout: &Layout) -> Setup {
        if let Some(h) = layout.unified_only() {
            return Setup::V2 {
                mount_point: h.mount_point.clone(),
                own_path: h.own_path.clone(),
            };
        }
        let v1: Vec<V1Hierarchy> = layout
            .hierarchies()
            .iter()
            .filter(|h| !h.v2 && !h.options.is_empty() && !h.options.starts_with("name="))
            .map(|h| V1Hierarchy {
                controllers: h.options.split(',').map(str::to_owned).collect(),
                mount_point: h.mount_point.clone(),
                own_path: h.own_path.clone(),
            })
            .collect();
        if v1.is_empty() {
            Setup::None
        } else {
            Setup::V1(v1)
        }
    }

    /// A cgroup2 hierarchy rooted at `dir`: containers are placed relative
    /// to `dir` itself (relative paths) or to its mount root (absolute).
    pub fn v2_at(dir: &Path) -> Setup {
        Setup::V2 {
            mount_point: dir.to_path_buf(),
            own_path: "/".into(),
        }
    }

    /// Whether containers get cgroups.
    pub fn enabled(&self) -> bool {
        !matches!(self, Setup::None)
    }

    /// The checked writes for `r` in this mode.
    pub fn plan(&self, r: &LinuxResources) -> Result<Vec<Write>> {
        match self {
            Setup::V1(_) => v1::plan(r),
            Setup::V2 { .. } => v2::plan(r),
            Setup::None => {
                if crate::plan::resources_requested(r) {
                    Err(Error::unsupported(
                        "linux.resources",
                        "no cgroup filesystem is mounted on this host",
                    ))
                } else {
                    Ok(Vec::new())
                }
            }
        }
    }

    /// The directories of a cgroup at `placement`.
    pub fn paths(&self, placement: &Placement) -> CgroupPaths {
        match self {
            Setup::V1(hs) => CgroupPaths {
                v2: false,
                dirs: hs
                    .iter()
                    .map(|h| CgroupDir {
                        controllers: h.controllers.clone(),
                        path: placement.dir_in(&h.mount_point, &h.own_path),
                        owned: false,
                    })
                    .collect(),
            },
            Setup::V2 {
                mount_point,
                own_path,
            } => CgroupPaths {
                v2: true,
                dirs: vec![CgroupDir {
                    controllers: Vec::new(),
                    path: placement.dir_in(mount_point, own_path),
                    owned: false,
                }],
            },
            Setup::None => CgroupPaths {
                v2: false,
                dirs: Vec::new(),
            },
        }
    }
}

/// Where a container's cgroup is on the host, as recorded in its state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// A cgroup2 cgroup (one directory) rather than v1 (one per hierarchy).
    pub v2: bool,
    /// The directories.
    pub dirs: Vec<CgroupDir>,
}

/// One directory of a container's cgroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// v1: the controllers of its hierarchy (`cpu`, `memory`); empty on v2.
    pub controllers: Vec<String>,
    /// The directory.
    pub path: PathBuf,
    /// Made by corral, so corral removes it (and kills what is left in it).
    pub owned: bool,
}

impl CgroupPaths {
    /// The directory holding `controller`'s files (v2: the only one).
    pub(crate) fn dir_of(&self, controller: &str) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(|d| d.path.as_path());
        }
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }
}

/// A container's cgroup, planned but not made yet.
#[derive(Debug)]
pub(crate) struct Prepared {
    paths: CgroupPaths,
    writes: Vec<Write>,
    /// The spec asked for a cgroup (a path or resources): failing to make
    /// one fails the create.
    required: bool,
}

impl Prepared {
    /// A v1 cgroup: one directory per hierarchy, joined through `tasks`.
    pub(crate) fn is_v1(&self) -> bool {
        !self.paths.v2
    }
}

/// Checks `linux.cgroupsPath` and `linux.resources` of `spec` for this
/// setup: everything that can be refused is refused here, before anything
/// is made. `None` when the host has no cgroup filesystem (and the spec
/// asks for nothing).
pub(crate) fn prepare(setup: &Setup, id: &str, spec: &crate::Spec) -> Result<Option<Prepared>> {
    let linux = spec.oci().linux().as_ref();
    let writes = match linux.and_then(|l| l.resources().as_ref()) {
        Some(r) => setup.plan(r)?,
        None => Vec::new(),
    };
    let placement = path::placement(id, linux.and_then(|l| l.cgroups_path().as_deref()))?;
    if !setup.enabled() {
        if linux.is_some_and(|l| l.cgroups_path().is_some()) {
            return Err(Error::unsupported(
                "linux.cgroupsPath",
                "no cgroup filesystem is mounted on this host",
            ));
        }
        return Ok(None);
    }
    let required = !writes.is_empty() || linux.is_some_and(|l| l.cgroups_path().is_some());
    let mut paths = setup.paths(&placement);
    if !paths.v2 {
        paths.dirs.retain(|d| needed_v1(d, &writes));
    }
    Ok(Some(Prepared {
        paths,
        writes,
        required,
    }))
}

/// v1 controllers every container gets: pause (freezer), OOM reports and
/// stats (memory, cpu, cpuacct, pids). The other hierarchies are made only
/// when the spec writes to them: every v1 directory costs a `mkdir` and an
/// `rmdir` under the kernel's global cgroup mutex, which caps how many
/// containers per second a host can start (runc makes all of them).
const V1_ALWAYS: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer"];

fn needed_v1(dir: &CgroupDir, writes: &[Write]) -> bool {
    dir.controllers.iter().any(|c| {
        V1_ALWAYS.contains(&c.as_str()) || writes.iter().any(|w| w.controller == c.as_str())
    })
}

/// Makes the directories and applies the resources. On failure nothing is
/// left behind. `None` when an unprivileged runtime may not make a cgroup
/// the spec did not ask for (rootless): the container then shares the
/// runtime's, as with runc's rootless mode.
pub(crate) fn make(prepared: Prepared, spares: &Arc<Spares>) -> Result<Option<CgroupPaths>> {
    let mut paths = prepared.paths;
    let parents = spares.parents_of(&paths);
    let spare = parents.as_deref().and_then(|p| spares.take(p));
    let created = tree::create(&mut paths, spare);
    if let Some(parents) = parents {
        spares.refill(parents);
    }
    if let Err(e) = created {
        if !prepared.required && !rustix::process::geteuid().is_root() && permission_denied(&e) {
            tracing::warn!(error = %e, "no cgroup for the container: not permitted and none asked for");
            return Ok(None);
        }
        return Err(e);
    }
    if let Err(e) = tree::apply(&paths, &prepared.writes) {
        tree::remove_blocking(&paths);
        return Err(e);
    }
    Ok(Some(paths))
}

/// Whether `e` was caused by EACCES or EPERM.
fn permission_denied(e: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::PermissionDenied
                || io.raw_os_error() == Some(libc::EPERM);
        }
        cause = c.source();
    }
    false
}

/// Changes the resources of a live cgroup (`corral update`).
pub(crate) fn update(paths: &CgroupPaths, r: &LinuxResources) -> Result<()> {
    let writes = if paths.v2 { v2::plan(r)? } else { v1::plan(r)? };
    if let Some(m) = r.memory() {
        if m.check_before_update() == Some(true) {
            if let Some(limit) = m.limit().filter(|l| *l > 0) {
                let usage = stats::read(paths).memory.usage.usage;
                if usage > limit as u64 {
                    return Err(Error::invalid(
                        "linux.resources.memory.limit",
                        format!("{limit} is below the current usage {usage} (checkBeforeUpdate)"),
                    ));
                }
            }
        }
    }
    tree::apply(paths, &writes)
}

/// After a `SIGKILL` to a container: a frozen v1 task acts on it only
/// once thawed, so thaw (v2 lets fatal signals through a freeze).
pub(crate) fn thaw_after_kill(paths: &CgroupPaths, signal: i32) {
    if signal == libc::SIGKILL && !paths.v2 && freezer::is_frozen(paths) {
        let _ = freezer::thaw_write(paths);
    }
}

#[cfg(test)]
mod tests;
