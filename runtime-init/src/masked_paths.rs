//! Step MaskedPaths: hide paths of the container (after pivot_root) that
//! expose host information or controls, such as `/proc/kcore`.
//!
//! A directory gets an empty read-only tmpfs over it, anything else a bind
//! of `/dev/null`; a missing path is skipped. It does not decide which
//! paths (the spec does).

use std::path::Path;

use corral_protocol::RawPath;
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::mount::{MountFlags, mount, mount_bind};

use crate::error::{Error, Result};

pub fn apply(paths: &[RawPath]) -> Result<()> {
    paths.iter().try_for_each(|path| mask(path.as_path()))
}

fn mask(path: &Path) -> Result<()> {
    let fail = |op: &'static str| {
        move |errno| Error::MaskedPath {
            op,
            path: path.to_owned(),
            errno,
        }
    };
    let st = match rustix::fs::stat(path) {
        Err(Errno::NOENT) => return Ok(()),
        other => other.map_err(fail("stat"))?,
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        mount("tmpfs", path, "tmpfs", MountFlags::RDONLY, None)
            .map_err(fail("mount read-only tmpfs over"))
    } else {
        mount_bind("/dev/null", path).map_err(fail("bind /dev/null over"))
    }
}
