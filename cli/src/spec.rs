//! `corral spec`: a default `config.json`, the same shape as runc's.

use std::path::Path;

use anyhow::Context;
use corral::oci_spec::runtime::Spec;

/// Writes `<bundle>/config.json`; refuses to overwrite one.
pub fn write(bundle: &Path, rootless: bool) -> anyhow::Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("file {path:?} exists: remove it first");
    }
    let mut spec = Spec::default();
    spec.set_hostname(Some("corral".into()));
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
        p.set_args(Some(vec!["sh".into()]));
    }
    if let Some(root) = spec.root_mut() {
        root.set_path("rootfs".into());
        root.set_readonly(Some(true));
    }
    if let Some(linux) = spec.linux_mut() {
        // Cgroup resources come later; the default config must run today.
        linux.set_resources(None);
    }
    if rootless {
        to_rootless(&mut spec)?;
    }
    let json = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("write {path:?}"))?;
    Ok(0)
}

/// runc's `specconv.ToRootless`: a new user namespace mapping root to the
/// caller's uid and gid, no network namespace (an unprivileged user cannot
/// configure one), `/sys` bound from the host (sysfs cannot be mounted
/// without a network namespace of one's own), and no `gid=` mount options
/// (only the caller's gid is mapped).
fn to_rootless(spec: &mut Spec) -> anyhow::Result<()> {
    use corral::oci_spec::runtime::{
        LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder,
    };
    let map = |host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(1u32)
            .build()
    };
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    if let Some(linux) = spec.linux_mut() {
        linux.set_uid_mappings(Some(vec![map(uid)?]));
        linux.set_gid_mappings(Some(vec![map(gid)?]));
        let mut namespaces: Vec<_> = linux
            .namespaces()
            .iter()
            .flatten()
            .filter(|n| {
                !matches!(
                    n.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::User
                )
            })
            .cloned()
            .collect();
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()?,
        );
        linux.set_namespaces(Some(namespaces));
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mut mounts {
        if m.destination().as_path() == Path::new("/sys") {
            *m = MountBuilder::default()
                .destination("/sys")
                .typ("none")
                .source("/sys")
                .options(
                    ["rbind", "nosuid", "noexec", "nodev", "ro"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()?;
        } else if let Some(options) = m.options().clone() {
            let kept = options
                .into_iter()
                .filter(|o| !o.starts_with("gid="))
                .collect();
            m.set_options(Some(kept));
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}
