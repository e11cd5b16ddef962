//! The host's cgroup hierarchies as this process sees them: which are
//! mounted under `/sys/fs/cgroup`, v1 or v2, and this process's own
//! directory in each. Read once per [`Runtime`](crate::Runtime).
//!
//! Detected from `/proc/self/mountinfo` and `/proc/self/cgroup`, never
//! assumed: hosts are pure v2, pure v1, or hybrid (v1 controllers plus a
//! cgroup2 `unified` mount).

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// Directory name under `/sys/fs/cgroup` (`memory`, `unified`,
    /// `cpu,cpuacct`), or empty for a cgroup2 mount at the root itself.
    pub name: String,
    /// Where it is mounted on the host.
    pub mount_point: PathBuf,
    /// Mount data that selects it (`cpu`, `name=systemd`); empty for v2.
    pub options: String,
    /// cgroup2.
    pub v2: bool,
    /// This process's cgroup in it (`/` or `/a/b`).
    pub own_path: String,
}

impl Hierarchy {
    /// This process's cgroup directory on the host.
    pub fn own_dir(&self) -> PathBuf {
        self.mount_point.join(self.own_path.trim_start_matches('/'))
    }
}

/// All hierarchies under `/sys/fs/cgroup`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layout {
    hierarchies: Vec<Hierarchy>,
}

impl Layout {
    /// Reads this process's view.
    pub fn detect() -> std::io::Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
        Ok(Self::parse(&mountinfo, &cgroup))
    }

    /// Parses `mountinfo` and `/proc/self/cgroup` text.
    pub fn parse(mountinfo: &str, cgroup: &str) -> Self {
        let own: Vec<(Vec<&str>, &str)> = cgroup
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                let _id = parts.next()?;
                let controllers = parts.next()?;
                let path = parts.next()?;
                let set = controllers.split(',').filter(|c| !c.is_empty()).collect();
                Some((set, path))
            })
            .collect();
        let hierarchies = mountinfo
            .lines()
            .filter_map(|line| parse_mount(line, &own))
            .collect();
        Layout { hierarchies }
    }

    /// Every hierarchy, in mount order.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// The cgroup2 hierarchy when it is mounted at `/sys/fs/cgroup` itself
    /// (a pure v2 host).
    pub fn unified_only(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.v2 && h.name.is_empty())
    }
}

fn parse_mount(line: &str, own: &[(Vec<&str>, &str)]) -> Option<Hierarchy> {
    let (pre, post) = line.split_once(" - ")?;
    let mount_point = pre.split(' ').nth(4)?;
    let mut post = post.split(' ');
    let fstype = post.next()?;
    let _source = post.next()?;
    let super_opts = post.next().unwrap_or("");
    let v2 = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    let name = if mount_point == ROOT {
        String::new()
    } else {
        mount_point
            .strip_prefix(ROOT)?
            .strip_prefix('/')?
            .to_owned()
    };
    let selectors: Vec<&str> = super_opts
        .split(',')
        .filter(|o| !v2 && is_selector(o))
        .collect();
    let own_path = own
        .iter()
        .find(|(set, _)| {
            if v2 {
                set.is_empty()
            } else {
                !set.is_empty()
                    && set.iter().all(|c| selectors.contains(c))
                    && set.len() == selectors.len()
            }
        })
        .map_or("/", |(_, p)| p);
    Some(Hierarchy {
        name,
        mount_point: Path::new(mount_point).to_path_buf(),
        options: selectors.join(","),
        v2,
        own_path: own_path.to_owned(),
    })
}

/// A v1 super option that names a controller or a named hierarchy (as
/// opposed to `rw`, `relatime` and friends).
fn is_selector(option: &str) -> bool {
    !matches!(
        option,
        "rw" | "ro"
            | "relatime"
            | "noatime"
            | "nosuid"
            | "nodev"
            | "noexec"
            | "clone_children"
            | "noprefix"
            | "xattr"
            | "favordynmods"
            | "nsdelegate"
            | "memory_recursiveprot"
    ) && !option.starts_with("release_agent=")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "9:name=systemd:/\n4:memory:/process_api/x\n1:cpu:/\n0::/\n";

    #[test]
    fn hybrid_host_lists_v1_and_unified() {
        let l = Layout::parse(HYBRID, OWN);
        let names: Vec<_> = l.hierarchies().iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "systemd", "unified"]);
        assert!(l.unified_only().is_none());
        let mem = &l.hierarchies()[1];
        assert_eq!(
            mem.own_dir(),
            Path::new("/sys/fs/cgroup/memory/process_api/x")
        );
        assert_eq!(l.hierarchies()[2].options, "name=systemd");
        assert!(l.hierarchies()[3].v2);
    }

    #[test]
    fn pure_v2_host_is_unified_only() {
        let l = Layout::parse(
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/user.slice\n",
        );
        let u = l.unified_only().unwrap();
        assert_eq!(u.own_dir(), Path::new("/sys/fs/cgroup/user.slice"));
    }

    #[test]
    fn combined_controllers_match_their_line() {
        let l = Layout::parse(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
            "3:cpu,cpuacct:/k\n",
        );
        assert_eq!(l.hierarchies()[0].own_path, "/k");
        assert_eq!(l.hierarchies()[0].options, "cpu,cpuacct");
    }
}
