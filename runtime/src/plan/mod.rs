//! Validates a [`Spec`] and translates it into what the kernel and the
//! init need: the `clone3` namespace flags and the [`InitSpec`]. Pure: the
//! host facts it needs (cgroup layout) are passed in.
//!
//! Every field corral does not implement yet is refused with
//! [`Error::Unsupported`] naming it; nothing is silently ignored.

pub(crate) mod cpus;
mod devices;
mod idmap;
mod joins;
mod mempolicy;
mod mounts;
pub(crate) mod names;
mod netdev;
mod sched;
pub(crate) mod seccomp;
mod userns;

use std::collections::HashSet;

use corral_protocol::{CapSets, InitSpec, MountOp, ProcessSpec, RawPath, Rlimit, StartVia};
use oci_spec::runtime::{Linux, LinuxNamespaceType, Process};

pub(crate) use idmap::{IdmapRequest, IdmapUserns};
pub(crate) use joins::Joins;
pub(crate) use mounts::{CgroupContext, bind_container_cgroup, mount_attrs_of};
pub(crate) use netdev::NetDevice;
pub(crate) use userns::IdMaps;

use crate::cgroup_layout::Layout;
use crate::error::{Error, Result};
use crate::spec::Spec;

/// What `create` needs from a spec.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `CLONE_NEW*` bits for `clone3`.
    pub clone_flags: u64,
    /// The init's instructions.
    pub init: InitSpec,
    /// uid/gid maps the parent writes for a new user namespace.
    pub id_maps: Option<IdMaps>,
    /// Namespaces joined by path, and a new time namespace.
    pub joins: Joins,
    /// `linux.netDevices`: host devices the runtime moves into the new
    /// network namespace before the init runs.
    pub net_devices: Vec<NetDevice>,
    /// Idmapped binds the runtime makes and sends to the init, in op order.
    pub idmapped: Vec<IdmapRequest>,
    /// The ops of each v1 `cgroup` mount without a cgroup namespace (a
    /// tmpfs, a bind per hierarchy, a final read-only remount), which the
    /// runtime may build itself as one detached tree (`cgroup_tree`).
    pub cgroup_v1_mounts: Vec<std::ops::Range<usize>>,
    /// Those the runtime builds itself, once `cgroup_tree::collapse` took
    /// them over.
    pub cgroup_trees: Vec<crate::cgroup_tree::TreeRequest>,
    /// Where the seccomp user-notification fd goes, with NOTIFY rules.
    pub seccomp_listener: Option<seccomp::Listener>,
}

/// Builds the plan for container `id`.
pub(crate) fn plan(id: &str, spec: &Spec, layout: &Layout, start_via: StartVia) -> Result<Plan> {
    let oci = spec.oci();
    refuse_unsupported(oci)?;
    let linux = oci
        .linux()
        .as_ref()
        .ok_or_else(|| Error::invalid("linux", "missing"))?;
    let namespaces = namespaces(linux)?;
    let joins = joins::plan(linux)?;
    let has = |t: LinuxNamespaceType| namespaces.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        return Err(Error::invalid(
            "linux.namespaces",
            "a mount namespace is required (corral never mounts in the host's)",
        ));
    }
    let root = oci
        .root()
        .as_ref()
        .ok_or_else(|| Error::invalid("root", "missing"))?;
    let rootfs = spec.rootfs()?;
    let process = oci
        .process()
        .as_ref()
        .ok_or_else(|| Error::invalid("process", "missing"))?;
    if (oci.hostname().is_some() || oci.domainname().is_some()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::invalid(
            "hostname",
            "setting it needs a uts namespace",
        ));
    }
    let cgroups = CgroupContext {
        layout,
        cgroupns: has(LinuxNamespaceType::Cgroup),
    };
    let new_userns = joins.clone_flags & libc::CLONE_NEWUSER as u64 != 0;
    let id_maps = userns::plan(linux, new_userns)?;
    let container_userns = idmap::ContainerUserns {
        exists: new_userns || joins.joined_user,
        maps: id_maps.as_ref(),
    };
    let mut mount_ops = Vec::new();
    let mut idmapped = Vec::new();
    let mut cgroup_v1_mounts = Vec::new();
    for (i, m) in oci.mounts().iter().flatten().enumerate() {
        let ops = mounts::translate(i, m, spec.bundle(), &cgroups)?;
        let is_cgroup = matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"));
        if is_cgroup && !cgroups.cgroupns && ops.len() > 1 && ops[1].fstype.is_none() {
            cgroup_v1_mounts.push(mount_ops.len()..mount_ops.len() + ops.len());
        }
        if let [op] = ops.as_slice() {
            if let Some(req) = idmap::plan(i, m, op, mount_ops.len(), container_userns)? {
                idmapped.push(req);
                mount_ops.push(MountOp {
                    detached: true,
                    ..op.clone()
                });
                continue;
            }
        }
        mount_ops.extend(ops);
    }
    let dev_is_bound = mount_ops
        .iter()
        .any(|m| m.destination.as_bytes() == b"/dev" && m.fstype.is_none());
    let (devices, symlinks) =
        devices::plan(linux.devices().as_deref().unwrap_or(&[]), dev_is_bound)?;
    let root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => libc::MS_SLAVE | libc::MS_REC,
        Some(p) => mounts::propagation(p).ok_or_else(|| {
            Error::invalid("linux.rootfsPropagation", format!("unknown value {p:?}"))
        })?,
    };
    let (seccomp, seccomp_listener) = seccomp::plan(linux.seccomp().as_ref())?;
    let init = InitSpec {
        container_id: id.to_owned(),
        rootfs: RawPath::from(rootfs),
        root_propagation,
        readonly_root: root.readonly().unwrap_or(false),
        no_pivot: false,
        mounts: mount_ops,
        devices,
        symlinks,
        masked_paths: paths("linux.maskedPaths", linux.masked_paths())?,
        readonly_paths: paths("linux.readonlyPaths", linux.readonly_paths())?,
        hostname: oci.hostname().clone(),
        domainname: oci.domainname().clone(),
        loopback_up: joins.new_network,
        sysctls: sysctls(linux, &namespaces)?,
        process: process_spec(process)?,
        start_via,
        seccomp,
        hooks: hooks_plan(oci)?,
        personality: personality(linux)?,
        memory_policy: mempolicy::plan(linux.memory_policy().as_ref(), cpus::possible_nodes)?,
    };
    let net_devices = netdev::plan(linux.net_devices().as_ref(), joins.new_network)?;
    Ok(Plan {
        clone_flags: joins.clone_flags,
        init,
        id_maps,
        joins,
        net_devices,
        idmapped,
        cgroup_v1_mounts,
        cgroup_trees: Vec::new(),
        seccomp_listener,
    })
}

/// `linux.personality`: the domain as a `PER_*` number. runc accepts no
/// flags either (it ignores them with a warning); corral refuses them.
fn personality(linux: &Linux) -> Result<Option<u32>> {
    use oci_spec::runtime::LinuxPersonalityDomain as Domain;
    let Some(p) = linux.personality() else {
        return Ok(None);
    };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::unsupported(
            "linux.personality.flags",
            "personality flags are not supported (runc ignores them; corral refuses)",
        ));
    }
    Ok(Some(match p.domain() {
        Domain::PerLinux => 0,
        Domain::PerLinux32 => 8,
    }))
}

/// The init's part of the hooks, after checking them all.
fn hooks_plan(oci: &oci_spec::runtime::Spec) -> Result<Option<corral_protocol::InitHooks>> {
    let Some(hooks) = oci.hooks() else {
        return Ok(None);
    };
    crate::hooks::validate(hooks)?;
    Ok(Some(crate::hooks::init_hooks(hooks)))
}

/// Masked or read-only paths: each absolute (they are resolved inside the
/// container's root after the pivot).
fn paths(field: &str, list: &Option<Vec<String>>) -> Result<Vec<RawPath>> {
    let mut out = Vec::new();
    for (i, p) in list.iter().flatten().enumerate() {
        if !p.starts_with('/') || p.contains('\0') {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("{p:?} is not an absolute path"),
            ));
        }
        out.push(RawPath::from(p.as_str()));
    }
    Ok(out)
}

/// Why `linux.intelRdt` is refused, from what the host has: runc refuses
/// it ("Intel RDT is not supported or enabled") where no resctrl
/// filesystem is mounted; where one is, corral does not implement it yet.
fn intel_rdt_refusal() -> Error {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                l.split(" - ")
                    .nth(1)
                    .is_some_and(|t| t.starts_with("resctrl "))
            })
        })
        .unwrap_or(false);
    let reason = if mounted {
        "Intel RDT (resctrl) is mounted on this host, but corral does not apply intelRdt settings yet"
    } else {
        "Intel RDT is not supported or enabled: no resctrl filesystem is mounted"
    };
    Error::unsupported("linux.intelRdt", reason)
}

/// Refuses every process field whose support comes later, naming it. The
/// one list for a container's first process and for `exec`
/// ([`process_spec`] calls it).
fn refuse_unsupported_process(p: &Process) -> Result<()> {
    // As runc 1.1 on a host without the LSM: it refuses an SELinux label at
    // validation ("selinux is disabled or not supported") and fails its
    // init writing an AppArmor profile to /proc/self/attr/exec (EINVAL).
    // corral applies neither yet, so it refuses both at create.
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(Error::unsupported(
            "process.apparmorProfile",
            "AppArmor profiles are not applied by corral (runc fails too where AppArmor is not enabled)",
        ));
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(Error::unsupported(
            "process.selinuxLabel",
            "SELinux labels are not applied by corral (runc refuses them too where SELinux is disabled)",
        ));
    }
    Ok(())
}

/// Refuses every `linux` field whose support comes later, naming it (the
/// process fields: [`refuse_unsupported_process`], via [`process_spec`]).
fn refuse_unsupported(oci: &oci_spec::runtime::Spec) -> Result<()> {
    let Some(linux) = oci.linux() else {
        return Ok(());
    };
    if linux.intel_rdt().is_some() {
        return Err(intel_rdt_refusal());
    }
    if linux
        .mount_label()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        // runc 1.1 without SELinux adds `context=` to every mount's data
        // and fails on the first (EINVAL); corral refuses at create.
        return Err(Error::unsupported(
            "linux.mountLabel",
            "SELinux mount labels are not applied by corral (runc fails too where SELinux is disabled)",
        ));
    }
    Ok(())
}

/// Whether a `linux.resources` object asks for anything.
pub(crate) fn resources_requested(r: &oci_spec::runtime::LinuxResources) -> bool {
    r.devices().as_ref().is_some_and(|d| !d.is_empty())
        || r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|r| !r.is_empty())
        || r.unified().as_ref().is_some_and(|u| !u.is_empty())
}

/// The namespace types the container has, created or joined (see `joins`).
fn namespaces(linux: &Linux) -> Result<Vec<LinuxNamespaceType>> {
    let mut seen = Vec::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        if seen.contains(&ns.typ()) {
            return Err(Error::invalid(field, format!("{} appears twice", ns.typ())));
        }
        seen.push(ns.typ());
    }
    Ok(seen)
}

/// sysctls, each checked to belong to a namespace the container owns (as
/// runc does): writing one would otherwise change the host.
fn sysctls(linux: &Linux, namespaces: &[LinuxNamespaceType]) -> Result<Vec<(String, String)>> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut out: Vec<(String, String)> = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.sort();
    for (key, _) in &out {
        let field = format!("linux.sysctl[{key:?}]");
        let needed = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            LinuxNamespaceType::Ipc
        } else if key.starts_with("net.") {
            LinuxNamespaceType::Network
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            LinuxNamespaceType::Uts
        } else {
            return Err(Error::invalid(
                field,
                "not namespaced: setting it would change the host",
            ));
        };
        if !namespaces.contains(&needed) {
            return Err(Error::invalid(field, format!("needs a {needed} namespace")));
        }
        if key.contains('/') || key.split('.').any(|part| part.is_empty() || part == "..") {
            return Err(Error::invalid(field, "malformed key"));
        }
    }
    Ok(out)
}

/// The OCI process translated for the init, for a container's first
/// process and for `exec` alike: every check and refusal is here.
pub(crate) fn process_spec(p: &Process) -> Result<ProcessSpec> {
    refuse_unsupported_process(p)?;
    let args = p.args().as_deref().unwrap_or(&[]);
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::invalid("process.args", "empty: nothing to run"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::invalid(
            "process.cwd",
            format!("{:?} is not absolute", p.cwd()),
        ));
    }
    let env = p.env().as_deref().unwrap_or(&[]);
    for (i, e) in env.iter().enumerate() {
        if !e.contains('=') || e.contains('\0') {
            return Err(Error::invalid(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=value"),
            ));
        }
    }
    let user = p.user();
    if let Some(umask) = user.umask().filter(|&m| m > 0o777) {
        return Err(Error::invalid(
            "process.user.umask",
            format!("{umask:#o} has bits above 0777"),
        ));
    }
    if let Some(adj) = p.oom_score_adj().filter(|a| !(-1000..=1000).contains(a)) {
        return Err(Error::invalid(
            "process.oomScoreAdj",
            format!("{adj} is outside -1000..=1000"),
        ));
    }
    Ok(ProcessSpec {
        args: args.iter().map(|a| RawPath::from(a.as_str())).collect(),
        env: env.iter().map(|e| RawPath::from(e.as_str())).collect(),
        cwd: RawPath::from(p.cwd().as_path()),
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .map(|b| (clamp16(b.height()), clamp16(b.width()))),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        capabilities: capabilities(p)?,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits: rlimits(p)?,
        oom_score_adj: p.oom_score_adj(),
        io_priority: io_priority(p)?,
        scheduler: sched::plan(p.scheduler().as_ref())?,
        exec_cpu_affinity: cpus::exec_affinity(
            p.exec_cpu_affinity().as_ref(),
            cpus::possible_cpus,
        )?,
    })
}

/// `process.ioPriority` as an `ioprio_set(2)` value: `IOPRIO_PRIO_VALUE
/// (class, level)`, the level 0 (highest) to 7, as runc checks.
fn io_priority(p: &Process) -> Result<Option<u32>> {
    use oci_spec::runtime::IOPriorityClass as Class;
    let Some(io) = p.io_priority() else {
        return Ok(None);
    };
    let class = match io.class() {
        Class::IoprioClassRt => 1,
        Class::IoprioClassBe => 2,
        Class::IoprioClassIdle => 3,
    };
    let level = io.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::invalid(
            "process.ioPriority.priority",
            format!("{level} is outside 0..=7"),
        ));
    }
    Ok(Some(class << 13 | level as u32))
}

fn clamp16(v: u64) -> u16 {
    v.min(u64::from(u16::MAX)) as u16
}

fn capabilities(p: &Process) -> Result<Option<CapSets>> {
    let Some(caps) = p.capabilities() else {
        return Ok(None);
    };
    let mask = |field: &str, set: &Option<HashSet<_>>| names::capability_mask(field, set.as_ref());
    let sets = CapSets {
        bounding: mask("process.capabilities.bounding", caps.bounding())?,
        effective: mask("process.capabilities.effective", caps.effective())?,
        inheritable: mask("process.capabilities.inheritable", caps.inheritable())?,
        permitted: mask("process.capabilities.permitted", caps.permitted())?,
        ambient: mask("process.capabilities.ambient", caps.ambient())?,
    };
    // The kernel raises an ambient cap only if it is permitted and
    // inheritable. runc's default config asks for ambient caps with an
    // empty inheritable set; runc and crun then leave them out, and so does
    // the init, without a failed start. Said here, not by the init, so
    // that it costs no message per container. Info, not warn: runc's
    // default config hits this every time.
    if sets.ambient & !(sets.permitted & sets.inheritable) != 0 {
        tracing::info!(
            "process.capabilities.ambient: capabilities not in the permitted and inheritable sets left out"
        );
    }
    Ok(Some(sets))
}

fn rlimits(p: &Process) -> Result<Vec<Rlimit>> {
    let mut out = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let resource = names::rlimit_number(r.typ())
            .ok_or_else(|| Error::invalid(&field, format!("unknown type {:?}", r.typ())))?;
        if r.soft() > r.hard() {
            return Err(Error::invalid(
                field,
                format!("soft limit {} above hard limit {}", r.soft(), r.hard()),
            ));
        }
        if out.iter().any(|o: &Rlimit| o.resource == resource) {
            return Err(Error::invalid(field, "type appears twice"));
        }
        out.push(Rlimit {
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
