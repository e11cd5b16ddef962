//! Step CloseFds: no fd the init inherited or opened reaches the workload,
//! except stdio (0-2).
//!
//! Every fd from 3 up is marked close-on-exec with
//! `close_range(CLOSE_RANGE_CLOEXEC)` over the gaps between the fds the
//! init still needs (the init socket and the start FIFO), which are
//! close-on-exec already. Marking rather than closing means no fd the init
//! owns is invalidated under it, and `execve` does the closing. The gap
//! computation is pure; the apply is one call per range.

use std::os::fd::{AsFd, OwnedFd};

use corral_protocol::InitChannel;
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::sys;

/// The first fd that is not the workload's stdio.
const FIRST: u32 = 3;

pub fn run(channel: &InitChannel, fifo: Option<&OwnedFd>) -> Result<()> {
    let mut keep = vec![sys::fd_number(channel.as_fd())];
    keep.extend(fifo.map(|fd| sys::fd_number(fd.as_fd())));
    let result = plan_ranges(FIRST, &keep)
        .into_iter()
        .try_for_each(|(first, last)| sys::cloexec_range(first, last));
    match result {
        // Before Linux 5.9 (ENOSYS) or 5.11 (EINVAL for the flag).
        Err(Errno::NOSYS | Errno::INVAL) => sys::cloexec_listed(FIRST, &keep),
        other => other,
    }
    .map_err(|errno| Error::CloseFds { errno })
}

/// The inclusive ranges from `first` to `u32::MAX` that skip every fd in
/// `keep`.
pub fn plan_ranges(first: u32, keep: &[u32]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut ranges = Vec::new();
    let mut next = Some(first);
    for fd in keep {
        if let Some(start) = next.filter(|&start| start < fd) {
            ranges.push((start, fd - 1));
        }
        next = fd.checked_add(1);
    }
    if let Some(start) = next {
        ranges.push((start, u32::MAX));
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_around_kept_fds() {
        assert_eq!(plan_ranges(3, &[7, 5]), [(3, 4), (6, 6), (8, u32::MAX)]);
    }

    #[test]
    fn adjacent_and_leading_kept_fds_leave_no_empty_range() {
        assert_eq!(plan_ranges(3, &[3, 4]), [(5, u32::MAX)]);
        assert_eq!(plan_ranges(3, &[4, 5, 5]), [(3, 3), (6, u32::MAX)]);
    }

    #[test]
    fn nothing_kept_is_one_range_and_stdio_is_never_touched() {
        assert_eq!(plan_ranges(3, &[]), [(3, u32::MAX)]);
        assert_eq!(plan_ranges(3, &[1, 2]), [(3, u32::MAX)]);
    }

    #[test]
    fn keeping_the_last_fd_number_ends_the_plan() {
        assert_eq!(plan_ranges(3, &[u32::MAX]), [(3, u32::MAX - 1)]);
    }
}
