//! Idmapped bind mounts, the runtime's half: making the detached idmapped
//! trees the init moves into the container (`MountFd` messages, see
//! `docs/protocol.md`). What is idmapped, and with whose mappings, is
//! decided in `plan::idmap`.
//!
//! The runtime makes them because it is real root in the host's mount
//! namespace, where the sources are: `open_tree(OPEN_TREE_CLONE)` copies the
//! source (with the mounts below it for `rbind`) into a detached tree, and
//! `mount_setattr(MOUNT_ATTR_IDMAP)` maps its owners through a user
//! namespace, which needs privilege over the source's filesystem that the
//! init, inside the container's user namespace, lacks. The namespace is the
//! container's (opened by the caller), or, for a mount with mappings of its
//! own, one made for it: a holder child cloned into a new user namespace,
//! its maps written, the namespace opened, and the child killed and reaped
//! through its pidfd (no thread).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::mount::{OpenTreeFlags, open_tree};

use crate::error::{Error, Result};
use crate::pidfd::PidFd;
use crate::plan::{IdMaps, IdmapRequest, IdmapUserns};

/// One detached idmapped tree, for op `op` of the init's mounts.
#[derive(Debug)]
pub(crate) struct Detached {
    /// Index into `InitSpec::mounts`.
    pub op: u32,
    /// The `open_tree` fd.
    pub fd: OwnedFd,
}

/// Makes the trees of `requests`. `container` is the container's user
/// namespace (needed when a request takes its mappings).
///
/// # Cancel safety
/// Cancel-safe: a holder child left behind by a dropped future is killed
/// and reaped by `reaper`; the trees made so far are closed, which unmounts
/// them.
pub(crate) async fn make(
    requests: &[IdmapRequest],
    container: Option<BorrowedFd<'_>>,
) -> Result<Vec<Detached>> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    if !rustix::process::geteuid().is_root() {
        return Err(Error::unsupported(
            format!("{}.options", requests[0].field),
            "idmapped mounts need a runtime running as root",
        ));
    }
    let mut own: Vec<(&IdMaps, OwnedFd)> = Vec::new();
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        let userns = match &req.userns {
            IdmapUserns::Container => container.ok_or_else(|| {
                Error::invalid(
                    format!("{}.options", req.field),
                    "the container has no user namespace to map with",
                )
            })?,
            IdmapUserns::Own(maps) => {
                if !own.iter().any(|(m, _)| *m == maps) {
                    own.push((maps, userns_with(maps, &req.field).await?));
                }
                let (_, fd) = own.iter().find(|(m, _)| *m == maps).expect("pushed above");
                fd.as_fd()
            }
        };
        out.push(Detached {
            op: req.op,
            fd: idmapped_tree(req, userns)?,
        });
    }
    Ok(out)
}

/// The detached, idmapped clone of `req.source`.
fn idmapped_tree(req: &IdmapRequest, userns: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if req.tree {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = open_tree(rustix::fs::CWD, &req.source, flags).map_err(|e| {
        Error::sys(
            format!("open_tree {:?} for {}.source", req.source, req.field),
            e,
        )
    })?;
    // `open_tree` clones a shared host mount into its peer group. Made a
    // slave here, explicitly rather than relying on what the attach in the
    // container's namespace does to a peer (on 6.18 it already shows as a
    // slave there), it behaves as a bind made inside the container after
    // the root went `rslave`: host mounts still arrive, nothing goes back.
    // The op's own propagation comes later, in the init.
    crate::sys::mount_set_attrs_recursive(tree.as_fd(), 0, libc::MS_SLAVE).map_err(|e| {
        Error::sys(
            format!("make {:?} a slave for {}", req.source, req.field),
            e,
        )
    })?;
    match crate::sys::mount_setattr_idmap(tree.as_fd(), req.recursive, userns) {
        Ok(()) => Ok(tree),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(Error::unsupported(
            format!("{}.source", req.field),
            format!(
                "the filesystem of {:?}{} does not support idmapped mounts \
                 (mount_setattr MOUNT_ATTR_IDMAP: EINVAL)",
                req.source,
                if req.recursive && req.tree {
                    " or of a mount below it"
                } else {
                    ""
                }
            ),
        )),
        Err(e) => Err(Error::sys(
            format!("idmap {:?} for {}", req.source, req.field),
            e,
        )),
    }
}

/// A user namespace with `maps`, held open by its fd only.
async fn userns_with(maps: &IdMaps, field: &str) -> Result<OwnedFd> {
    let spawned = crate::sys::spawn_userns_holder()
        .map_err(|e| Error::sys(format!("clone3 a user namespace for {field}"), e))?;
    let pid = spawned.pid;
    let holder = Holder(Some(
        PidFd::new(spawned.pidfd, pid).map_err(|e| Error::sys("register pidfd", e))?,
    ));
    crate::userns::write_maps(pid, maps, field)?;
    let path = format!("/proc/{}/ns/user", pid.as_raw_nonzero());
    let fd = rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {path:?}"), e))?;
    holder.finish().await;
    Ok(fd)
}

/// Owns a holder child: killed and reaped by [`Holder::finish`], or by
/// `reaper` if dropped first (an error or a cancelled create).
struct Holder(Option<PidFd>);

impl Holder {
    async fn finish(mut self) {
        let process = self.0.take().expect("finish runs once");
        let _ = process.signal(libc::SIGKILL);
        let _ = process.wait().await;
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(process) = self.0.take() {
            crate::reaper::kill_and_reap(process, None);
        }
    }
}
