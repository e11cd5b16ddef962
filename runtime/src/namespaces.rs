//! Opening the namespace files a spec joins by `path`, in the parent and
//! before `clone3`, so that a wrong path is an error naming its field and
//! the child gets fds it only has to `setns` (see `plan::joins`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};
use crate::plan::Joins;

/// Open namespace files, in the order the child joins them.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    join: Vec<(OwnedFd, i32)>,
    pid: Option<OwnedFd>,
}

impl Opened {
    /// `(fd, CLONE_NEW* type)` pairs for `sys::ChildPlan::join`.
    pub(crate) fn join(&self) -> Vec<(BorrowedFd<'_>, i32)> {
        self.join.iter().map(|(fd, t)| (fd.as_fd(), *t)).collect()
    }

    /// The pid namespace to join around `clone3`.
    pub(crate) fn pid(&self) -> Option<BorrowedFd<'_>> {
        self.pid.as_ref().map(|fd| fd.as_fd())
    }
}

/// Opens every path of `joins` and checks it is a namespace of its type.
pub(crate) fn open(joins: &Joins) -> Result<Opened> {
    let mut out = Opened::default();
    for (nstype, path, field) in &joins.join {
        out.join.push((open_one(path, *nstype, field)?, *nstype));
    }
    if let Some((path, field)) = &joins.join_pid {
        out.pid = Some(open_one(path, libc::CLONE_NEWPID, field)?);
    }
    Ok(out)
}

fn open_one(path: &std::path::Path, nstype: i32, field: &str) -> Result<OwnedFd> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::invalid(field, format!("open {path:?}: {e}")))?;
    match crate::sys::ns_type(fd.as_fd()) {
        Ok(t) if t == nstype => Ok(fd),
        Ok(_) => Err(Error::invalid(
            field,
            format!("{path:?} is a namespace of another type"),
        )),
        Err(e) => Err(Error::invalid(
            field,
            format!("{path:?} is not a namespace file: {e}"),
        )),
    }
}
