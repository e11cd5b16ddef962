//! Step CpuAffinity (exec mode): `sched_setaffinity(0, ..)` for
//! `process.execCPUAffinity.final`, just before `execve` (the mask survives
//! it). Without `final` the mask is every CPU, which the kernel narrows to
//! the cgroup's cpuset: the spec's "container's default CPU affinity", and
//! what runc does, so that `initial` (set by the runtime before the cgroup
//! move) does not stick. Nothing is done when the process has no
//! `execCPUAffinity` at all.

use corral_protocol::CpuAffinity;
use rustix::thread::{CpuSet, sched_setaffinity};

use crate::error::{Error, Result};

pub fn set_final(affinity: Option<&CpuAffinity>) -> Result<()> {
    let Some(a) = affinity else { return Ok(()) };
    let mut set = CpuSet::new();
    let cpus = match &a.final_cpus {
        Some(cpus) => {
            for &cpu in cpus {
                if cpu as usize >= CpuSet::MAX_CPU {
                    return Err(fail(cpus, rustix::io::Errno::INVAL));
                }
                set.set(cpu as usize);
            }
            cpus.clone()
        }
        None => {
            for cpu in 0..CpuSet::MAX_CPU {
                set.set(cpu);
            }
            Vec::new()
        }
    };
    sched_setaffinity(None, &set).map_err(|errno| fail(&cpus, errno))
}

fn fail(cpus: &[u32], errno: rustix::io::Errno) -> Error {
    let list = if cpus.is_empty() {
        "all".to_owned()
    } else {
        cpus.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    Error::CpuAffinity { cpus: list, errno }
}
