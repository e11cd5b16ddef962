//! `corral spec`: a default `config.json`, the same shape as runc's.

use std::path::Path;

use anyhow::Context;
use corral::oci_spec::runtime::Spec;

/// Writes `<bundle>/config.json`; refuses to overwrite one.
pub fn write(bundle: &Path, rootless: bool) -> anyhow::Result<i32> {
    if rootless {
        anyhow::bail!("--rootless: unsupported: rootless specs come with user namespace support");
    }
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
    let json = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("write {path:?}"))?;
    Ok(0)
}
