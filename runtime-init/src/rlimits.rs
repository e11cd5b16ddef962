//! Step Rlimits: the spec's resource limits, set on the init so that the
//! workload inherits them across `execve`.

use corral_protocol::Rlimit;
use rustix::io::Errno;
use rustix::process::{Resource, setrlimit};

use crate::error::{Error, Result};

pub fn apply(rlimits: &[Rlimit]) -> Result<()> {
    for limit in rlimits {
        let fail = |errno| Error::Rlimit {
            resource: limit.resource,
            errno,
        };
        let resource = resource(limit.resource).ok_or(Errno::INVAL).map_err(fail)?;
        setrlimit(resource, to_rustix(limit)).map_err(fail)?;
    }
    Ok(())
}

/// rustix's `Resource` for an `RLIMIT_*` number (no conversion from raw
/// exists; the numbers are the same on every Linux architecture we build).
pub fn resource(raw: u32) -> Option<Resource> {
    use Resource::*;
    [
        Cpu, Fsize, Data, Stack, Core, Rss, Nproc, Nofile, Memlock, As, Locks, Sigpending,
        Msgqueue, Nice, Rtprio, Rttime,
    ]
    .into_iter()
    .find(|r| *r as u32 == raw)
}

/// `u64::MAX` is `RLIM_INFINITY`, which rustix spells `None`.
pub fn to_rustix(limit: &Rlimit) -> rustix::process::Rlimit {
    let finite = |v: u64| (v != u64::MAX).then_some(v);
    rustix::process::Rlimit {
        current: finite(limit.soft),
        maximum: finite(limit.hard),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_numbers_map_to_resources() {
        // RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_RTTIME (asm-generic/resource.h)
        assert_eq!(resource(7), Some(Resource::Nofile));
        assert_eq!(resource(4), Some(Resource::Core));
        assert_eq!(resource(15), Some(Resource::Rttime));
        assert_eq!(resource(99), None);
    }

    #[test]
    fn u64_max_is_infinity() {
        let limit = Rlimit {
            resource: 7,
            soft: 1024,
            hard: u64::MAX,
        };
        let got = to_rustix(&limit);
        assert_eq!((got.current, got.maximum), (Some(1024), None));
    }
}
