//! What the host layer made for a pod, written atomically next to the pod's other state, so
//! that the next start cleans up after a pod process that crashed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cgroup::Cgroup;
use super::veth;
use crate::pod::PodDir;

/// What a pod process made on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// The pod process.
    pub pid: u32,
    /// Its cgroup directory, if it made one.
    pub cgroup: Option<PathBuf>,
    /// The host end of its veth pair, if it made one.
    pub veth: Option<String>,
}

impl HostState {
    /// Writes the record to `path` atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path)
    }

    fn read(path: &Path) -> Option<HostState> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// Cleans up after every pod under `state_dir` whose process is gone: kills and removes its
/// cgroup, deletes its veth, removes its emptyDirs (`medium: Memory` ones in `/dev/shm` too)
/// and its record. Returns the pod directories
/// it cleaned.
pub fn recover(state_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut cleaned = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let pod_dir = PodDir::new(&path);
        let record = pod_dir.host_record();
        let Some(state) = HostState::read(&record) else {
            continue;
        };
        if alive(state.pid) {
            continue;
        }
        tracing::warn!(pod = %path.display(), pid = state.pid, "cleaning up after a pod process that died");
        if let Some(path) = &state.cgroup
            && let Err(error) = Cgroup::adopt(path.clone()).destroy()
        {
            tracing::warn!(%error, "cannot remove the cgroup of a dead pod");
        }
        if let Some(name) = &state.veth
            && let Err(error) = veth::delete(name)
        {
            tracing::warn!(%error, "cannot delete the veth of a dead pod");
        }
        let _ = crate::hostdir::remove_tree(&pod_dir.volumes());
        for memory in pod_dir.memory_empty_dirs() {
            let _ = crate::hostdir::remove_tree(&memory);
        }
        let _ = crate::hostdir::remove_tree(&pod_dir.control_root());
        let _ = std::fs::remove_file(&record);
        cleaned.push(path);
    }
    cleaned
}

/// Whether `pid` is a live wasmpod process (a recycled pid running something else is not).
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("wasmpod"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_pods_leftovers_are_removed_and_a_live_ones_kept() {
        let state = tempfile::tempdir().expect("tempdir");
        let dead = state.path().join("default_dead_1");
        std::fs::create_dir_all(PodDir::new(&dead).empty_dir_path("data", false)).expect("volume");
        HostState {
            pid: u32::MAX,
            ..HostState::default()
        }
        .write(&PodDir::new(&dead).host_record())
        .expect("write");
        let live = state.path().join("default_live_2");
        std::fs::create_dir_all(PodDir::new(&live).empty_dir_path("data", false)).expect("volume");
        HostState {
            // This test process: its command line holds the test binary's name, wasmpod...
            pid: std::process::id(),
            ..HostState::default()
        }
        .write(&PodDir::new(&live).host_record())
        .expect("write");
        // `medium: Memory` emptyDirs live in /dev/shm, outside the pod directories.
        let (dead_memory, live_memory) = (
            PodDir::new(&dead).empty_dir_path("cache", true),
            PodDir::new(&live).empty_dir_path("cache", true),
        );
        std::fs::create_dir_all(&dead_memory).expect("memory volume");
        std::fs::create_dir_all(&live_memory).expect("memory volume");
        let cleaned = recover(state.path());
        let live_memory_kept = live_memory.exists();
        let _ = std::fs::remove_dir(&live_memory);
        assert_eq!(cleaned, vec![dead.clone()]);
        assert!(!PodDir::new(&dead).volumes().exists());
        assert!(!dead_memory.exists(), "{}", dead_memory.display());
        assert!(!PodDir::new(&dead).host_record().exists());
        assert!(PodDir::new(&live).empty_dir_path("data", false).exists());
        assert!(live_memory_kept);
    }
}
