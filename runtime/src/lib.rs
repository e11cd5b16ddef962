//! corral: an async-first Linux container runtime.
//!
//! Create OCI containers from tokio, start them, and await their exit
//! through pidfds, without a thread or a shim process per container.
//!
//! ```no_run
//! # async fn demo() -> corral::Result<()> {
//! use corral::{Runtime, Spec, Stdio};
//! let rt = Runtime::builder().build()?;
//! let spec = Spec::from_bundle("bundle/")?;
//! let mut c = rt.create("job-42", spec).stdout(Stdio::piped()).await?; // created
//! c.start().await?;                                                    // running
//! let status = c.wait().await?;                                        // exited
//! c.delete().await?;
//! # let _ = status; Ok(()) }
//! ```
//!
//! The init binary (`corral-init`) is built with this crate and embedded
//! in it; each [`Runtime`] seals a copy into a memfd, so nothing needs to be
//! installed beside a program that uses the library.

mod cgroup_join;
mod cgroup_layout;
mod cgroup_tree;
mod cgroups;
mod channel;
mod console;
mod container;
mod create;
mod error;
mod exec;
mod hooks;
mod idmap;
mod init_binary;
mod mount_ns_hold;
mod namespaces;
mod netdev;
mod pidfd;
mod plan;
mod pool;
mod reaper;
mod resident;
mod runtime;
mod seccomp_notify;
mod spec;
mod splice;
mod state;
mod status;
mod stdio;
mod stored;
mod sys;
mod uring;
mod userns;

pub use cgroups::{
    BlkioEntry, BlkioStats, CgroupDir, CgroupPaths, CpuStats, CpuUsage, HugetlbStats, MemoryEntry,
    MemoryStats, PidsStats, Stats, Throttling,
};
pub use console::Console;
pub use container::Container;
pub use corral_protocol::{InitError, Step};
pub use error::{Error, Result};
pub use exec::{Exec, ExecProcess};
pub use plan::names::capability_name;
pub use pool::Pool;
pub use runtime::{Create, Runtime, RuntimeBuilder};
pub use spec::{Spec, SpecBuilder};
pub use state::{Status, StoredSeccomp, StoredState, rfc3339_now};
pub use status::ExitStatus;
pub use stdio::{ContainerOutput, ContainerStdin, OutputFile, Stdio};
pub use uring::Backend;

/// The OCI types corral reads (re-exported `oci-spec`).
pub use oci_spec;
