//! Step Capabilities: the five capability sets of the workload.
//!
//! Two calls around the user step: `drop_bounding` before it, because
//! `PR_CAPBSET_DROP` needs `CAP_SETPCAP` in the effective set, which a
//! switch to a non-root uid clears; `apply` after it, when `capset` raises
//! the effective set again from the permitted one (kept by
//! `PR_SET_KEEPCAPS`, see `user`) and the ambient set can be raised (a cap
//! must be permitted and inheritable for that). Capabilities this kernel
//! does not know (above `cap_last_cap`) are left out, with a warning.

use corral_protocol::{CapSets, Step};
use rustix::io::Errno;
use rustix::thread::{
    CapabilitySet, CapabilitySets, clear_ambient_capability_set,
    configure_capability_in_ambient_set, remove_capability_from_bounding_set, set_capabilities,
    set_keep_capabilities,
};

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::{channel, procfs};

pub fn drop_bounding(caps: Option<&CapSets>) -> Result<()> {
    let Some(caps) = caps else { return Ok(()) };
    let last = last_cap();
    for cap in bits(!caps.bounding & known(last)) {
        remove_capability_from_bounding_set(one(cap)).map_err(|errno| Error::Capability {
            op: "drop from the bounding set",
            cap,
            errno,
        })?;
    }
    Ok(())
}

pub fn apply(caps: Option<&CapSets>) -> Result<()> {
    if let Some(caps) = caps {
        let known = known(last_cap());
        if [
            caps.effective,
            caps.permitted,
            caps.inheritable,
            caps.ambient,
        ]
        .iter()
        .any(|set| set & !known != 0)
        {
            channel::warn(
                Step::Capabilities,
                "capabilities unknown to this kernel left out",
                None,
            );
        }
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(caps.effective & known),
            permitted: CapabilitySet::from_bits_retain(caps.permitted & known),
            inheritable: CapabilitySet::from_bits_retain(caps.inheritable & known),
        };
        set_capabilities(None, sets).map_err(|errno| Error::CapSets {
            op: "capset",
            errno,
        })?;
        clear_ambient_capability_set().map_err(|errno| Error::CapSets {
            op: "clear the ambient set",
            errno,
        })?;
        // The kernel raises an ambient cap only if it is permitted and
        // inheritable. The others are left out, as runc and crun do; the
        // runtime says so when it plans the container.
        let raisable = caps.permitted & caps.inheritable & known;
        for cap in bits(caps.ambient & raisable) {
            configure_capability_in_ambient_set(one(cap), true).map_err(|errno| {
                Error::Capability {
                    op: "raise ambient",
                    cap,
                    errno,
                }
            })?;
        }
    }
    set_keep_capabilities(false).map_err(|errno| Error::CapSets {
        op: "clear keepcaps",
        errno,
    })
}

/// Reads [`last_cap`] now. The resident init calls this once: the inits it
/// clones inherit the value instead of each reading /proc afresh (about
/// 18 µs in a new process, whose /proc entries are not cached).
pub fn read_last_cap_ahead() {
    let _ = last_cap();
}

/// The highest capability number this kernel knows:
/// `/proc/sys/kernel/cap_last_cap`, else the first `PR_CAPBSET_READ` that
/// fails with EINVAL, minus one.
/// Read once: both steps ask.
fn last_cap() -> u32 {
    static LAST: OnceLock<u32> = OnceLock::new();
    *LAST.get_or_init(|| {
        let mut buf = [0u8; 32];
        if let Some(last) = procfs::read(c"/proc/sys/kernel/cap_last_cap", &mut buf)
            .and_then(|text| std::str::from_utf8(text).ok()?.trim().parse::<u32>().ok())
        {
            return last;
        }
        (0..63)
            .find(|&cap| {
                rustix::thread::capability_is_in_bounding_set(one(cap)) == Err(Errno::INVAL)
            })
            .map_or(63, |first_unknown| first_unknown.saturating_sub(1))
    })
}

/// The mask of capabilities `0..=last`.
pub fn known(last: u32) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// The capability numbers set in `mask`, in increasing order.
pub fn bits(mask: u64) -> impl Iterator<Item = u32> {
    (0..64).filter(move |bit| mask & (1u64 << bit) != 0)
}

fn one(cap: u32) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1u64 << cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_lists_capability_numbers_in_order() {
        let mask = (1 << 0) | (1 << 21) | (1 << 40);
        assert_eq!(bits(mask).collect::<Vec<_>>(), [0, 21, 40]);
        assert_eq!(bits(0).count(), 0);
        assert_eq!(bits(u64::MAX).count(), 64);
    }

    #[test]
    fn known_mask_covers_up_to_the_last_cap() {
        assert_eq!(known(0), 1);
        assert_eq!(known(40), (1 << 41) - 1);
        assert_eq!(known(63), u64::MAX);
    }

    #[test]
    fn bounding_drops_every_known_cap_not_kept() {
        // bounding keeps CHOWN (0) and NET_BIND_SERVICE (10); kernel knows 0..=40
        let keep = (1 << 0) | (1 << 10);
        let dropped: Vec<u32> = bits(!keep & known(40)).collect();
        assert_eq!(dropped.len(), 39);
        assert!(!dropped.contains(&0) && !dropped.contains(&10));
        assert_eq!(dropped.last(), Some(&40));
    }
}
