//! A pod's directory on the host: the one place that knows its layout.
//!
//! ```text
//! <pod dir>/volumes/<volume>/           emptyDirs (medium: Memory ones live in /dev/shm)
//! <pod dir>/logs/<container>/<n>.log    CRI log files, n = the container's restart count
//! <pod dir>/run/<container>/            control directories (the termination file)
//! <pod dir>/modules/                    modules the shim took from images' Wasm layers
//! <pod dir>/host.json                   the host layer's record, for recovery after a crash
//! <pod dir>/pod.json                    the pod process's record: the pod and its status
//! <pod dir>/control.sock                the pod process's control socket
//! <pod dir>/wasmpod.log                 a detached pod process's own log
//! ```
//!
//! Everything else (the CLI, the shim, the harness, recovery) asks a [`PodDir`] for a path
//! instead of spelling one.

use std::path::{Path, PathBuf};

/// Where `medium: Memory` emptyDirs go, when the host has it.
const SHM: &str = "/dev/shm";

/// A pod's directory and its layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodDir {
    path: PathBuf,
}

impl PodDir {
    /// The pod directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PodDir { path: path.into() }
    }

    /// The directory of pod `spec` under `state_dir`: `<namespace>_<name>_<uid>`, as kubelet
    /// names a pod's log directory.
    pub fn for_pod(state_dir: &Path, spec: &crate::spec::PodSpec) -> Self {
        PodDir::new(state_dir.join(format!("{}_{}_{}", spec.namespace, spec.name, spec.uid)))
    }

    /// The pod's name for host objects made for it (its cgroup, its veth's hash): the
    /// directory's own name.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| "pod".to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the pod's disk-backed emptyDirs go.
    pub fn volumes(&self) -> PathBuf {
        self.path.join("volumes")
    }

    /// Where emptyDir `name` goes: `(parent, directory name)`. A `memory` one goes to
    /// `/dev/shm` (when the host has it) as `wasmpod-<hash>-<name>`, the hash of this pod
    /// directory's path, so two pods never share one and a pod's own are found by their
    /// prefix ([`PodDir::memory_empty_dirs`]).
    pub fn empty_dir(&self, name: &str, memory: bool) -> (PathBuf, String) {
        if memory && Path::new(SHM).is_dir() {
            (
                PathBuf::from(SHM),
                format!("{}{name}", self.memory_prefix()),
            )
        } else {
            (self.volumes(), name.to_owned())
        }
    }

    /// `wasmpod-<hash>-`: the start of this pod's `medium: Memory` emptyDirs' names. The hash
    /// (sha256 of the pod directory's path, 96 bits) has a fixed length, so no other pod's
    /// prefix starts with this one.
    fn memory_prefix(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.path.as_os_str().as_encoded_bytes());
        format!("wasmpod-{}-", &hex::encode(digest)[..24])
    }

    /// The pod's `medium: Memory` emptyDirs that exist in `/dev/shm` (recovery after a crash
    /// removes them; they are not under the pod directory).
    pub fn memory_empty_dirs(&self) -> Vec<PathBuf> {
        let prefix = self.memory_prefix();
        let Ok(entries) = std::fs::read_dir(SHM) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(&prefix))
            })
            .map(|entry| entry.path())
            .collect()
    }

    /// The host path of emptyDir `name`.
    pub fn empty_dir_path(&self, name: &str, memory: bool) -> PathBuf {
        let (parent, name) = self.empty_dir(name, memory);
        parent.join(name)
    }

    /// The directory of container `container`'s log files.
    pub fn log_dir(&self, container: &str) -> PathBuf {
        self.path.join("logs").join(container)
    }

    /// The log file of run `attempt` (the restart count) of container `container`.
    pub fn log_file(&self, container: &str, attempt: u32) -> PathBuf {
        self.log_dir(container).join(format!("{attempt}.log"))
    }

    /// The runs (restart counts) of container `container` that have a log file, unordered.
    pub fn log_attempts(&self, container: &str) -> std::io::Result<Vec<u32>> {
        Ok(std::fs::read_dir(self.log_dir(container))?
            .filter_map(|entry| {
                entry
                    .ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// The parent of every container's control directory.
    pub fn control_root(&self) -> PathBuf {
        self.path.join("run")
    }

    /// Container `container`'s control directory (read-only in the guest).
    pub fn control_dir(&self, container: &str) -> PathBuf {
        self.control_root().join(container)
    }

    /// Where the shim writes modules it took from images' Wasm layers.
    pub fn modules(&self) -> PathBuf {
        self.path.join("modules")
    }

    /// The host layer's record of what it made for this pod.
    pub fn host_record(&self) -> PathBuf {
        self.path.join("host.json")
    }

    /// The pod process's record of the pod ([`crate::control::PodRecord`]).
    pub fn record(&self) -> PathBuf {
        self.path.join("pod.json")
    }

    /// The pod process's control socket ([`crate::control`]).
    pub fn control_socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    /// A detached pod process's own log (its stderr once detached).
    pub fn process_log(&self) -> PathBuf {
        self.path.join("wasmpod.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout() {
        let dir = PodDir::new("/run/wasmpod/default_web_1");
        assert_eq!(
            dir.volumes(),
            Path::new("/run/wasmpod/default_web_1/volumes")
        );
        assert_eq!(
            dir.empty_dir_path("data", false),
            Path::new("/run/wasmpod/default_web_1/volumes/data")
        );
        assert_eq!(
            dir.log_file("web", 2),
            Path::new("/run/wasmpod/default_web_1/logs/web/2.log")
        );
        assert_eq!(
            dir.control_dir("web"),
            Path::new("/run/wasmpod/default_web_1/run/web")
        );
        assert_eq!(
            dir.host_record(),
            Path::new("/run/wasmpod/default_web_1/host.json")
        );
        assert_eq!(
            dir.record(),
            Path::new("/run/wasmpod/default_web_1/pod.json")
        );
        assert_eq!(
            dir.control_socket(),
            Path::new("/run/wasmpod/default_web_1/control.sock")
        );
        if Path::new(SHM).is_dir() {
            let memory = dir.empty_dir_path("mem", true);
            let name = memory
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            assert_eq!(memory.parent(), Some(Path::new(SHM)));
            assert!(
                name.starts_with("wasmpod-") && name.ends_with("-mem") && name.len() == 36,
                "{name}"
            );
            // Another pod's never share a name, even when one path starts with the other.
            let other = PodDir::new("/run/wasmpod/default_web_1_volumes");
            assert_ne!(other.empty_dir_path("mem", true), memory);
            assert_ne!(other.memory_prefix(), dir.memory_prefix());
        }
    }

    #[test]
    fn a_pods_memory_empty_dirs_are_found_by_their_prefix_only() {
        if !Path::new(SHM).is_dir() {
            return;
        }
        let state = tempfile::tempdir().expect("tempdir");
        let pod = PodDir::new(state.path().join("default_web_1"));
        let neighbour = PodDir::new(state.path().join("default_web_2"));
        let mine = ["a", "b"].map(|v| pod.empty_dir_path(v, true));
        let theirs = neighbour.empty_dir_path("a", true);
        for dir in mine.iter().chain([&theirs]) {
            std::fs::create_dir(dir).expect("memory emptyDir");
        }
        let mut found = pod.memory_empty_dirs();
        found.sort();
        let listed = found.clone();
        for dir in mine.iter().chain([&theirs]) {
            std::fs::remove_dir(dir).expect("remove");
        }
        assert_eq!(listed, mine.to_vec());
    }
}
