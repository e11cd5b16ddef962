//! [`Spec`]: an OCI runtime config plus the bundle it came from, loaded
//! from `config.json` or built in code. Validation and translation into
//! what the init does live in `plan`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxNamespaceBuilder, LinuxNamespaceType, ProcessBuilder, RootBuilder, Spec as OciSpec,
};

use crate::error::{Error, Result};

/// An OCI runtime config and its bundle directory.
///
/// Relative paths in the config (the rootfs, bind-mount sources) are
/// resolved against the bundle.
#[derive(Clone, Debug)]
pub struct Spec {
    oci: OciSpec,
    bundle: PathBuf,
}

impl Spec {
    /// Loads `<bundle>/config.json`.
    pub fn from_bundle(bundle: impl AsRef<Path>) -> Result<Self> {
        let bundle = bundle.as_ref();
        let bundle = std::path::absolute(bundle).map_err(|source| Error::Rootfs {
            path: bundle.to_path_buf(),
            source,
        })?;
        let path = bundle.join("config.json");
        let oci = OciSpec::load(&path).map_err(|source| Error::LoadSpec { path, source })?;
        Ok(Spec { oci, bundle })
    }

    /// Wraps a config already in memory; relative paths resolve against
    /// `bundle`.
    pub fn from_oci(oci: OciSpec, bundle: impl Into<PathBuf>) -> Self {
        Spec {
            oci,
            bundle: bundle.into(),
        }
    }

    /// A builder starting from the runtime's default config (runc's
    /// `spec` defaults without a terminal; pid, mount, ipc, uts and
    /// network namespaces; no cgroup resources).
    pub fn builder() -> SpecBuilder {
        SpecBuilder::default()
    }

    /// The OCI config.
    pub fn oci(&self) -> &OciSpec {
        &self.oci
    }

    /// The OCI config, to change it.
    pub fn oci_mut(&mut self) -> &mut OciSpec {
        &mut self.oci
    }

    /// The bundle directory.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The rootfs as a host path (`root.path` against the bundle).
    pub fn rootfs(&self) -> Result<PathBuf> {
        let root = self
            .oci
            .root()
            .as_ref()
            .ok_or_else(|| Error::invalid("root", "missing"))?;
        Ok(self.bundle.join(root.path()))
    }
}

/// Builds a [`Spec`] in code. See [`Spec::builder`].
#[derive(Debug)]
pub struct SpecBuilder {
    oci: OciSpec,
    bundle: PathBuf,
    error: Option<Error>,
}

impl Default for SpecBuilder {
    fn default() -> Self {
        let mut oci = OciSpec::default();
        oci.set_hostname(None);
        if let Some(linux) = oci.linux_mut() {
            linux.set_resources(None);
            let namespaces = [
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Network,
            ];
            linux.set_namespaces(Some(namespaces.iter().map(|t| ns(*t)).collect()));
        }
        SpecBuilder {
            oci,
            bundle: PathBuf::from("/"),
            error: None,
        }
    }
}

fn ns(typ: LinuxNamespaceType) -> oci_spec::runtime::LinuxNamespace {
    LinuxNamespaceBuilder::default()
        .typ(typ)
        .build()
        .expect("a namespace with a type is complete")
}

impl SpecBuilder {
    /// The rootfs directory (absolute, or relative to the bundle).
    pub fn rootfs(mut self, path: impl Into<PathBuf>) -> Self {
        match RootBuilder::default()
            .path(path.into())
            .readonly(false)
            .build()
        {
            Ok(root) => {
                self.oci.set_root(Some(root));
            }
            Err(e) => self.error = Some(Error::invalid("root", e.to_string())),
        }
        self
    }

    /// The bundle directory against which relative paths resolve.
    pub fn bundle(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bundle = dir.into();
        self
    }

    /// The process's arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        self.process_mut().set_args(Some(args));
        self
    }

    /// Adds `KEY=value` to the environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let entry = format!("{key}={value}");
        let env = self.process_mut().env_mut().get_or_insert_with(Vec::new);
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(entry);
        self
    }

    /// The hostname (needs the uts namespace, which is on by default).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.oci.set_hostname(Some(name.into()));
        self
    }

    /// Replaces the namespace set (no paths: each is created new).
    pub fn namespaces(mut self, types: &[LinuxNamespaceType]) -> Self {
        if let Some(linux) = self.oci.linux_mut() {
            linux.set_namespaces(Some(types.iter().map(|t| ns(*t)).collect()));
        }
        self
    }

    /// Makes the root filesystem read-only.
    pub fn readonly_root(mut self, readonly: bool) -> Self {
        if let Some(root) = self.oci.root_mut() {
            root.set_readonly(Some(readonly));
        }
        self
    }

    /// Any other change, on the OCI config itself.
    pub fn with_oci(mut self, f: impl FnOnce(&mut OciSpec)) -> Self {
        f(&mut self.oci);
        self
    }

    /// The spec. Nothing is validated until `Runtime::create`.
    pub fn build(self) -> Result<Spec> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(Spec {
            oci: self.oci,
            bundle: self.bundle,
        })
    }

    fn process_mut(&mut self) -> &mut oci_spec::runtime::Process {
        self.oci
            .process_mut()
            .get_or_insert_with(|| ProcessBuilder::default().build().expect("default process"))
    }
}
