//! Cgroup directories made ahead of time (cgroup v1 only).
//!
//! On a v1 host a container's cgroup is five directories, one per
//! hierarchy, and each `mkdir` runs under the kernel's global cgroup
//! mutex: about 0.2-0.3 ms of every create. A `rename` within the same
//! parent is about a fifth of that. So a `Runtime` keeps a few sets of
//! empty directories under the parents its last create used, named
//! `.spare-<pid>-<n>`, and a create renames one set into place. The set
//! taken is replaced by a blocking task, off the create's path.
//!
//! A renamed directory is the cgroup the kernel made at the `mkdir`:
//! never entered, with no charges or counters. What v1 copies from the
//! parent at `mkdir` (memory's `swappiness` and `oom_control`) is the
//! parent's value at that time. v2 refuses `rename` of a cgroup, and a v2
//! cgroup is one `mkdir`: nothing is kept there. Spares are removed when
//! the last clone of the `Runtime` is dropped; a process killed before
//! that leaves its (empty) spares behind.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::debug;

use super::CgroupPaths;

/// The spare sets of one `Runtime`.
#[derive(Debug)]
pub(crate) struct Spares {
    /// How many sets to keep ready (0: none).
    keep: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The parent directories the ready sets are made in, one per
    /// hierarchy, in the order of the container's directories.
    parents: Vec<PathBuf>,
    /// Each set: one directory per parent, in that order.
    ready: Vec<Vec<PathBuf>>,
    /// A refill task is running.
    refilling: bool,
}

/// Sets made so far by every runtime of this process, for unique names.
static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Spares {
    pub(crate) fn new(keep: usize) -> Arc<Spares> {
        Arc::new(Spares {
            keep,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ready set for a container whose directories are under `parents`
    /// (see [`Spares::parents_of`]): one directory per parent, in order.
    /// `None` when no set is ready for those parents.
    pub(crate) fn take(&self, parents: &[PathBuf]) -> Option<Vec<PathBuf>> {
        let mut state = self.state();
        if state.parents != parents {
            return None;
        }
        state.ready.pop()
    }

    /// Makes sets under `parents` in a blocking task until `keep` are
    /// ready (the sets kept for other parents are removed first). Does
    /// nothing when a refill is already running, or outside a tokio
    /// runtime.
    pub(crate) fn refill(self: &Arc<Self>, parents: Vec<PathBuf>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut state = self.state();
            if state.refilling {
                return;
            }
            if state.parents != parents {
                // Rare (creates under other parents): removed here, so
                // that no set is ever out of `ready` and unowned.
                state.ready.iter().for_each(|set| remove(set));
                state.ready.clear();
                state.parents = parents.clone();
            }
            if state.ready.len() >= self.keep {
                return;
            }
            state.refilling = true;
        }
        let spares = Arc::clone(self);
        handle.spawn_blocking(move || spares.fill(&parents));
    }

    fn fill(&self, parents: &[PathBuf]) {
        loop {
            {
                let mut state = self.state();
                if state.parents != parents || state.ready.len() >= self.keep {
                    state.refilling = false;
                    return;
                }
            }
            let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let made = make_set(parents, n);
            let mut state = self.state();
            match made {
                Ok(set) if state.parents == parents => state.ready.push(set),
                Ok(set) => remove(&set),
                Err(e) => {
                    debug!(error = %e, "make spare cgroup directories");
                    state.refilling = false;
                    return;
                }
            }
        }
    }

    /// The parents spares for `paths` live in; `None` where none are kept
    /// (v2, a cpuset directory, which must be filled before use, or
    /// `keep` 0).
    pub(crate) fn parents_of(&self, paths: &CgroupPaths) -> Option<Vec<PathBuf>> {
        if self.keep == 0 || paths.v2 || paths.dirs.is_empty() {
            return None;
        }
        paths
            .dirs
            .iter()
            .map(|d| {
                if d.controllers.iter().any(|c| c == "cpuset") {
                    return None;
                }
                d.path.parent().map(Path::to_path_buf)
            })
            .collect()
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        state.ready.iter().for_each(|set| remove(set));
    }
}

/// One directory `.spare-<pid>-<n>` in each parent; on failure, none.
fn make_set(parents: &[PathBuf], n: u64) -> io::Result<Vec<PathBuf>> {
    let name = format!(".spare-{}-{n}", std::process::id());
    let mut set = Vec::with_capacity(parents.len());
    for parent in parents {
        let dir = parent.join(&name);
        if let Err(e) = std::fs::create_dir(&dir) {
            remove(&set);
            return Err(e);
        }
        set.push(dir);
    }
    Ok(set)
}

fn remove(set: &[PathBuf]) {
    for dir in set {
        if let Err(e) = std::fs::remove_dir(dir) {
            debug!(error = %e, dir = %dir.display(), "remove spare cgroup directory");
        }
    }
}

#[cfg(test)]
mod tests {
    //! On a plain temp dir: the rename, take and removal logic does not
    //! depend on cgroupfs. (A real v1 host is covered by the integration
    //! test `lifecycle::spare_cgroup_sets_are_gone_when_the_runtime_is`.)

    use super::super::{CgroupDir, tree};
    use super::*;

    struct Tmp(PathBuf);

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree_with(name: &str, hierarchies: &[&str]) -> (Tmp, CgroupPaths) {
        let root = std::env::temp_dir().join(format!("corral-spare-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dirs = hierarchies
            .iter()
            .map(|h| {
                std::fs::create_dir_all(root.join(h).join("corral")).unwrap();
                CgroupDir {
                    controllers: vec![h.to_string()],
                    path: root.join(h).join("corral").join("c1"),
                    owned: false,
                }
            })
            .collect();
        (Tmp(root), CgroupPaths { v2: false, dirs })
    }

    fn spares_in(paths: &CgroupPaths) -> usize {
        paths
            .dirs
            .iter()
            .flat_map(|d| std::fs::read_dir(d.path.parent().unwrap()).unwrap())
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(".spare-")
            })
            .count()
    }

    /// What `refill`'s task does, on this thread.
    fn fill_now(spares: &Spares, paths: &CgroupPaths) {
        let parents = spares.parents_of(paths).unwrap();
        {
            let mut state = spares.state();
            state.parents = parents.clone();
            state.refilling = true;
        }
        spares.fill(&parents);
        assert!(!spares.state().refilling);
    }

    #[test]
    fn a_taken_set_is_renamed_into_place_and_the_rest_go_at_drop() {
        let (_tmp, mut paths) = tree_with("take", &["memory", "pids"]);
        let spares = Spares::new(2);
        let parents = spares.parents_of(&paths).unwrap();
        assert!(
            spares.take(&parents).is_none(),
            "nothing is made ahead unasked"
        );
        fill_now(&spares, &paths);
        assert_eq!(spares_in(&paths), 4, "two sets of two directories");
        let set = spares.take(&parents).expect("a set is ready");
        tree::create(&mut paths, Some(set)).unwrap();
        for d in &paths.dirs {
            assert!(d.path.is_dir(), "{} is in place", d.path.display());
            assert!(d.owned, "a renamed spare is the container's own");
        }
        assert_eq!(spares_in(&paths), 2);
        drop(spares);
        assert_eq!(
            spares_in(&paths),
            0,
            "the runtime's drop removes its spares"
        );
    }

    #[test]
    fn a_set_for_other_parents_is_not_taken() {
        let (_tmp, paths) = tree_with("other", &["memory", "pids"]);
        let (_tmp2, elsewhere) = tree_with("elsewhere", &["memory", "pids"]);
        let spares = Spares::new(1);
        fill_now(&spares, &paths);
        let elsewhere = spares.parents_of(&elsewhere).unwrap();
        assert!(spares.take(&elsewhere).is_none());
        assert!(spares.take(&spares.parents_of(&paths).unwrap()).is_some());
    }

    #[test]
    fn none_are_kept_on_v2_with_cpuset_or_when_asked_for_none() {
        let (_tmp, paths) = tree_with("none", &["memory", "cpuset"]);
        assert!(Spares::new(2).parents_of(&paths).is_none(), "cpuset");
        let (_tmp2, mut v2) = tree_with("none-v2", &["unified"]);
        v2.v2 = true;
        assert!(Spares::new(2).parents_of(&v2).is_none(), "v2");
        let (_tmp3, plain) = tree_with("none-zero", &["memory"]);
        assert!(Spares::new(0).parents_of(&plain).is_none(), "keep 0");
        assert!(Spares::new(1).parents_of(&plain).is_some());
    }
}
