//! A cgroup2 parent of a test's own: pods go under it, and the test counts what is left.

use std::path::PathBuf;

/// A cgroup under this machine's cgroup2 mount named for the test and the process, removed
/// (when empty) on drop.
#[derive(Debug)]
pub struct CgroupParent {
    /// Its path relative to the cgroup2 mount, as `--cgroup-parent` takes it.
    pub relative: String,
    /// Its directory.
    pub absolute: PathBuf,
}

impl CgroupParent {
    /// The parent for `test`; the test needs root and a cgroup2 mount, and fails without.
    pub fn new(test: &str) -> CgroupParent {
        assert!(
            wasmpod::host::privileged(),
            "the host layer tests need root"
        );
        let mount = wasmpod::host::this_cgroup2_mount().expect("a cgroup2 mount");
        let relative = format!("wasmpod-test-{test}-{}", std::process::id());
        CgroupParent {
            absolute: mount.join(&relative),
            relative,
        }
    }

    /// The cgroups under it (the pods' that are left).
    pub fn children(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.absolute)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.absolute);
    }
}
