//! Holding each container's mount namespace until its exit is reaped (at
//! `delete`, or when its handle drops: see `crate::pidfd`).
//!
//! When the last process of a mount namespace exits, the kernel tears the
//! namespace down inside that exit, before the exit is reported: it
//! unmounts every mount and waits out an expedited RCU grace period before
//! it frees them. Only then does the pidfd become readable. On this
//! project's machines that is about a quarter of the time from a
//! container's exit to the wake-up of the task awaiting it
//! (`docs/performance.md`).
//!
//! So a runtime holds an fd of each new container's mount namespace, taken
//! from the pidfd just after the clone. The container's exit then finds
//! the namespace still referenced and reports at once. When the exit is
//! reaped, the fd goes to a blocking task, whose `close` does the teardown
//! off every waiter's path; `delete` awaits that task, so that the
//! container's mounts are gone when it returns.
//!
//! Each hold is an fd, and a runtime must drive 10,000 containers within
//! the 20,000 fds these hosts allow. So holds come from a budget
//! (`RuntimeBuilder::mount_ns_holds`); a container created while the
//! budget is spent runs without one, with the teardown back in its exit.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::process::Pid;

/// The holds a runtime may still take.
#[derive(Debug)]
pub(crate) struct Holds {
    free: AtomicUsize,
}

/// One container's mount namespace, kept referenced. [`Hold::release`]
/// (or dropping it) closes the fd on a blocking task.
#[derive(Debug)]
pub(crate) struct Hold(Option<(OwnedFd, GiveBack)>);

/// A released hold's teardown, for `delete` to await: a container's
/// mounts (its rootfs among them) are gone when `delete` returns.
pub(crate) type Teardown = Option<tokio::task::JoinHandle<()>>;

impl Holds {
    pub fn new(budget: usize) -> Arc<Holds> {
        Arc::new(Holds {
            free: AtomicUsize::new(budget),
        })
    }

    /// Takes a hold on the mount namespace of `pid` (this runtime's child,
    /// not yet reaped, so its pid cannot have been reused), if the budget
    /// allows. `None` also when the kernel gives no namespace fd: the
    /// container then runs as it would without holds.
    pub fn take(self: &Arc<Holds>, pidfd: BorrowedFd<'_>, pid: Pid) -> Option<Hold> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()?;
        // Spent; given back when this goes, with the fd or without one.
        let back = GiveBack(Arc::clone(self));
        match crate::sys::pidfd_mount_ns(pidfd).or_else(|_| {
            let path = format!("/proc/{}/ns/mnt", pid.as_raw_nonzero());
            rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(std::io::Error::from)
        }) {
            Ok(fd) => Some(Hold(Some((fd, back)))),
            Err(e) => {
                tracing::debug!(error = %e, "no mount namespace hold");
                None
            }
        }
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.free.load(Ordering::Acquire)
    }
}

impl Hold {
    /// Closes the fd (tearing the namespace down if it was the last
    /// reference) on a blocking task, or here without a tokio runtime;
    /// the budget gets it back once closed.
    pub fn release(mut self) -> Teardown {
        let (fd, back) = self.0.take()?;
        close_off_thread(fd, back)
    }
}

impl Drop for Hold {
    /// A hold dropped unreleased (its process handle let go) is released
    /// with nobody to await the teardown.
    fn drop(&mut self) {
        if let Some((fd, back)) = self.0.take() {
            drop(close_off_thread(fd, back));
        }
    }
}

/// Closes `fd` on a blocking task (here without a tokio runtime). Whether
/// the task runs or is dropped unrun (its runtime shutting down), the fd
/// is closed and `back` gives the budget its hold back.
fn close_off_thread(fd: OwnedFd, back: GiveBack) -> Teardown {
    let close = move || {
        drop(fd);
        drop(back);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Some(handle.spawn_blocking(close)),
        Err(_) => {
            close();
            None
        }
    }
}

/// Returns one hold to the budget when dropped.
#[derive(Debug)]
struct GiveBack(Arc<Holds>);

impl Drop for GiveBack {
    fn drop(&mut self) {
        self.0.free.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_pidfd() -> (OwnedFd, Pid) {
        let pid = rustix::process::getpid();
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open of this process");
        (fd, pid)
    }

    #[test]
    fn a_hold_is_this_processs_mount_namespace() {
        let holds = Holds::new(1);
        let (pidfd, pid) = own_pidfd();
        let hold = holds
            .take(std::os::fd::AsFd::as_fd(&pidfd), pid)
            .expect("a hold");
        let (fd, _) = hold.0.as_ref().expect("an fd");
        let held = rustix::fs::fstat(fd).expect("fstat the hold");
        let own = rustix::fs::stat("/proc/self/ns/mnt").expect("stat our mount namespace");
        assert_eq!((held.st_dev, held.st_ino), (own.st_dev, own.st_ino));
        assert_eq!(
            crate::sys::ns_type(std::os::fd::AsFd::as_fd(fd)).expect("NS_GET_NSTYPE"),
            libc::CLONE_NEWNS
        );
    }

    #[test]
    fn the_budget_is_spent_and_given_back_when_closed() {
        let holds = Holds::new(2);
        let (pidfd, pid) = own_pidfd();
        let pidfd = std::os::fd::AsFd::as_fd(&pidfd);
        let a = holds.take(pidfd, pid).expect("first hold");
        let b = holds.take(pidfd, pid).expect("second hold");
        assert!(holds.take(pidfd, pid).is_none(), "the budget is 2");
        assert_eq!(holds.free(), 0);
        // No tokio runtime here: dropping closes inline.
        drop(a);
        assert_eq!(holds.free(), 1);
        assert!(b.release().is_none(), "closed inline");
        assert_eq!(holds.free(), 2);
        assert!(holds.take(pidfd, pid).is_some());
    }

    #[tokio::test]
    async fn inside_tokio_a_release_closes_on_a_task_that_can_be_awaited() {
        let holds = Holds::new(1);
        let (pidfd, pid) = own_pidfd();
        let hold = holds
            .take(std::os::fd::AsFd::as_fd(&pidfd), pid)
            .expect("a hold");
        assert_eq!(holds.free(), 0);
        hold.release()
            .expect("a blocking task")
            .await
            .expect("the close");
        assert_eq!(holds.free(), 1);
    }

    #[test]
    fn the_ioctl_gives_the_namespace_without_proc() {
        let (pidfd, _) = own_pidfd();
        let fd = crate::sys::pidfd_mount_ns(std::os::fd::AsFd::as_fd(&pidfd))
            .expect("PIDFD_GET_MNT_NAMESPACE (Linux 6.11+)");
        let held = rustix::fs::fstat(&fd).expect("fstat");
        let own = rustix::fs::stat("/proc/self/ns/mnt").expect("stat our mount namespace");
        assert_eq!((held.st_dev, held.st_ino), (own.st_dev, own.st_ino));
    }

    #[test]
    fn a_zero_budget_holds_nothing() {
        let holds = Holds::new(0);
        let (pidfd, pid) = own_pidfd();
        assert!(holds.take(std::os::fd::AsFd::as_fd(&pidfd), pid).is_none());
    }
}
