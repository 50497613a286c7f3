//! The pod's cgroup v2: created under a parent, limits applied through the controllers the
//! parent offers, usage read back, killed and removed at the end.
//!
//! Everything goes through files under one directory, so the logic is tested against a fake
//! cgroupfs in a temp dir; `tests/host.rs` runs it on this machine's real cgroup2 tree.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::HostError;

/// The CFS period `cpu.max` is written with.
pub const CPU_PERIOD_US: u64 = 100_000;

/// What the pod's cgroup limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// `memory.max` in bytes.
    pub memory_max: Option<u64>,
    /// `cpu.max` quota in millicores (per [`CPU_PERIOD_US`]).
    pub cpu_max_millis: Option<u64>,
    /// `pids.max`.
    pub pids_max: Option<u64>,
}

/// What the pod's cgroup used, as far as its controllers tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// `cpu.stat` `usage_usec`.
    pub cpu_usage: Duration,
    /// `cpu.stat` `nr_throttled` (0 without the cpu controller).
    pub nr_throttled: u64,
    /// `memory.current`, with the memory controller.
    pub memory_current: Option<u64>,
    /// `memory.events` `oom_kill`, with the memory controller.
    pub oom_kills: Option<u64>,
    /// `pids.current`, with the pids controller.
    pub pids_current: Option<u64>,
}

/// A cgroup wasmpod created.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates `mount/parent/name`. The parent is created too when missing, and, when wasmpod
    /// created it, the controllers it offers are enabled for its children. The limits are
    /// written for the controllers the new cgroup has; one that is missing is returned as a
    /// warning, never silently skipped. Nothing is left behind on error.
    pub fn create(
        mount: &Path,
        parent: &Path,
        name: &str,
        limits: CgroupLimits,
    ) -> Result<(Cgroup, Vec<String>), HostError> {
        let parent_dir = mount.join(parent.strip_prefix("/").unwrap_or(parent));
        if !parent_dir.exists() {
            std::fs::create_dir_all(&parent_dir)
                .map_err(|e| HostError::io("create cgroup", &parent_dir, e))?;
        }
        enable_controllers(&parent_dir);
        let path = parent_dir.join(name);
        std::fs::create_dir(&path).map_err(|e| HostError::io("create cgroup", &path, e))?;
        let cgroup = Cgroup { path };
        match cgroup.apply(limits) {
            Ok(warnings) => Ok((cgroup, warnings)),
            Err(e) => {
                let _ = cgroup.destroy();
                Err(e)
            }
        }
    }

    /// A cgroup wasmpod made earlier (found in a crashed pod's record).
    pub(crate) fn adopt(path: PathBuf) -> Cgroup {
        Cgroup { path }
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The controllers this cgroup has (`cgroup.controllers`).
    pub fn controllers(&self) -> Vec<String> {
        read(&self.path.join("cgroup.controllers"))
            .map(|text| text.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn apply(&self, limits: CgroupLimits) -> Result<Vec<String>, HostError> {
        let available = self.controllers();
        let mut warnings = Vec::new();
        let mut limit = |controller: &str, file: &str, value: Option<String>| {
            let Some(value) = value else {
                return Ok(());
            };
            if !available.iter().any(|c| c == controller) {
                warnings.push(format!(
                    "cgroup controller {controller:?} is not available in {}: {file} {value} is not enforced",
                    self.path.display()
                ));
                return Ok(());
            }
            write(&self.path.join(file), &value)
        };
        limit(
            "memory",
            "memory.max",
            limits.memory_max.map(|b| b.to_string()),
        )?;
        limit(
            "cpu",
            "cpu.max",
            limits
                .cpu_max_millis
                .map(|m| format!("{} {CPU_PERIOD_US}", (m * CPU_PERIOD_US / 1000).max(1000))),
        )?;
        limit("pids", "pids.max", limits.pids_max.map(|p| p.to_string()))?;
        Ok(warnings)
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    pub fn add_process(&self, pid: u32) -> Result<(), HostError> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// The pids in the cgroup.
    pub fn procs(&self) -> Vec<u32> {
        read(&self.path.join("cgroup.procs"))
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the cgroup used so far.
    pub fn stats(&self) -> CgroupStats {
        let key = |file: &str, key: &str| {
            read(&self.path.join(file)).and_then(|text| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse().ok()).flatten()
                })
            })
        };
        let single = |file: &str| read(&self.path.join(file)).and_then(|t| t.trim().parse().ok());
        CgroupStats {
            cpu_usage: Duration::from_micros(key("cpu.stat", "usage_usec").unwrap_or(0)),
            nr_throttled: key("cpu.stat", "nr_throttled").unwrap_or(0),
            memory_current: single("memory.current"),
            oom_kills: key("memory.events", "oom_kill"),
            pids_current: single("pids.current"),
        }
    }

    /// Kills whatever is left in the cgroup (`cgroup.kill`), waits until it is empty and
    /// removes it. The caller must have moved its own process out first.
    pub fn destroy(self) -> Result<(), HostError> {
        let kill = self.path.join("cgroup.kill");
        if kill.exists() && !self.procs().is_empty() {
            write(&kill, "1")?;
        }
        // Killed tasks leave asynchronously: rmdir fails with EBUSY until the last is gone.
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() > give_up => {
                    return Err(HostError::io("remove cgroup", &self.path, e));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

/// Enables, for the children of `parent`, the memory, cpu and pids controllers it offers.
/// Best effort: a parent that is not wasmpod's own (CRI's) may refuse, and the pod cgroup then
/// reports the controllers as missing.
fn enable_controllers(parent: &Path) {
    let offered = read(&parent.join("cgroup.controllers")).unwrap_or_default();
    let enabled = read(&parent.join("cgroup.subtree_control")).unwrap_or_default();
    let wanted: Vec<String> = ["memory", "cpu", "pids"]
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !wanted.is_empty()
        && let Err(error) = write(&parent.join("cgroup.subtree_control"), &wanted.join(" "))
    {
        tracing::debug!(parent = %parent.display(), %error, "cannot enable cgroup controllers");
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn write(path: &Path, value: &str) -> Result<(), HostError> {
    std::fs::write(path, value).map_err(|e| HostError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroupfs: directories with the files the kernel would create.
    fn fake_parent(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let parent = root.path().join("wasmpod");
        std::fs::create_dir(&parent).expect("parent");
        std::fs::write(parent.join("cgroup.controllers"), controllers).expect("controllers");
        std::fs::write(parent.join("cgroup.subtree_control"), "").expect("subtree");
        root
    }

    #[test]
    fn limits_go_to_the_controllers_that_exist_and_missing_ones_are_reported() {
        let root = fake_parent("cpu memory pids");
        // The kernel would create the child's files; the fake pre-creates the directory's.
        let limits = CgroupLimits {
            memory_max: Some(256 << 20),
            cpu_max_millis: Some(1500),
            pids_max: Some(512),
        };
        let child = root.path().join("wasmpod/pod-a");
        std::fs::create_dir_all(&child).expect("child");
        std::fs::write(child.join("cgroup.controllers"), "cpu memory").expect("controllers");
        let cgroup = Cgroup {
            path: child.clone(),
        };
        let warnings = cgroup.apply(limits).expect("apply");
        assert_eq!(
            std::fs::read_to_string(child.join("memory.max")).expect("memory.max"),
            "268435456"
        );
        assert_eq!(
            std::fs::read_to_string(child.join("cpu.max")).expect("cpu.max"),
            "150000 100000"
        );
        assert!(!child.join("pids.max").exists());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"pids\""), "{warnings:?}");
        assert_eq!(
            std::fs::read_to_string(root.path().join("wasmpod/cgroup.subtree_control"))
                .unwrap_or_default(),
            ""
        );
        enable_controllers(&root.path().join("wasmpod"));
        assert_eq!(
            std::fs::read_to_string(root.path().join("wasmpod/cgroup.subtree_control"))
                .expect("subtree"),
            "+memory +cpu +pids"
        );
    }

    #[test]
    fn stats_read_cpu_memory_and_pids() {
        let root = tempfile::tempdir().expect("tempdir");
        let cgroup = Cgroup {
            path: root.path().to_owned(),
        };
        std::fs::write(
            root.path().join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_throttled 3\n",
        )
        .expect("cpu.stat");
        std::fs::write(root.path().join("memory.current"), "4096\n").expect("memory");
        std::fs::write(root.path().join("memory.events"), "oom 1\noom_kill 1\n").expect("ev");
        let stats = cgroup.stats();
        assert_eq!(stats.cpu_usage, Duration::from_micros(1500));
        assert_eq!(stats.nr_throttled, 3);
        assert_eq!(stats.memory_current, Some(4096));
        assert_eq!(stats.oom_kills, Some(1));
        assert_eq!(stats.pids_current, None);
    }
}
