//! The host layer: the pod process in a real cgroup v2 and a real network namespace, as the
//! infra container holds a Kubernetes pod's namespaces and kubelet places it in a cgroup.
//!
//! It applies to a process that holds exactly one pod (`wasmpod run`, the shim). Order:
//! [`HostLayer::create`] (cgroup, namespace, veth; all or nothing), [`HostLayer::enter`]
//! before the process starts its runtime threads (the process joins the cgroup; the calling
//! thread joins the namespace, and threads it starts later are born there), then the pod, then
//! [`HostLayer::destroy`] (back out, `cgroup.kill`, remove). A record of what was made is
//! written atomically into the pod directory; [`recover`] cleans up after a process that died.
//!
//! All of wasmpod's `unsafe` lives here, each with its `SAFETY:` reason.

mod cgroup;
mod mountinfo;
mod netns;
mod rtnetlink;
mod state;
mod veth;

use std::path::{Path, PathBuf};

pub use cgroup::{CPU_PERIOD_US, Cgroup, CgroupLimits, CgroupStats};
pub use mountinfo::{cgroup2_mount, this_cgroup, this_cgroup2_mount};
pub use netns::NetNs;
pub use state::{HostState, recover};
pub use veth::PodIp;

use crate::error::ErrorKind;
use crate::spec::PodSpec;

/// The host layer could not be set up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A host operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// What it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path given as a network namespace is not one.
    #[error("{path}: not a network namespace")]
    NotANamespace {
        /// The path.
        path: PathBuf,
    },
    /// This machine has no cgroup2 hierarchy.
    #[error("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")]
    NoCgroup2,
    /// A route netlink request failed.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was asked.
        what: String,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

impl HostError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HostError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            HostError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            HostError::NotANamespace { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

/// Which network namespace the pod gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetnsMode {
    /// A fresh one with only `lo` (the default as root).
    #[default]
    New,
    /// An existing one (what CRI hands the shim).
    Path(PathBuf),
    /// The host's own: no isolation.
    Host,
}

/// What the host layer makes for a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// The cgroup parent, relative to the cgroup2 mount (default `wasmpod`); `None`: no cgroup.
    pub cgroup_parent: Option<PathBuf>,
    /// The pod cgroup's limits.
    pub limits: CgroupLimits,
    /// The network namespace.
    pub netns: NetnsMode,
    /// A veth pair to the host with these addresses (needs a namespace of the pod's own).
    pub pod_ip: Option<PodIp>,
}

/// Memory the pod process needs beyond its guests' limits (runtime, compiled code, buffers),
/// added to `memory.max`.
pub const DEFAULT_MEMORY_OVERHEAD: u64 = 64 << 20;
/// The default `pids.max`: the runtime's worker and blocking threads, with room to spare.
pub const DEFAULT_PIDS_MAX: u64 = 1024;

impl HostConfig {
    /// Kubernetes' pod cgroup limits for `spec`: `memory.max` is the sum of the containers'
    /// memory limits plus `overhead`, `cpu.max` the sum of their cpu limits, each only when
    /// every app container has one (as kubelet sizes the pod cgroup); init containers count
    /// when larger.
    pub fn limits_for(spec: &PodSpec, overhead: u64) -> CgroupLimits {
        let sum = |get: fn(&crate::spec::Resources) -> Option<u64>| -> Option<u64> {
            let apps: Option<u64> = spec.containers.iter().map(|c| get(&c.resources)).sum();
            let init = spec
                .init_containers
                .iter()
                .map(|c| get(&c.resources))
                .max()
                .flatten();
            apps.map(|a| a.max(init.unwrap_or(0)))
        };
        CgroupLimits {
            memory_max: sum(|r| r.memory_limit).map(|m| m.saturating_add(overhead)),
            cpu_max_millis: sum(|r| r.cpu_limit),
            pids_max: Some(DEFAULT_PIDS_MAX),
        }
    }
}

/// What the host layer made for one pod.
#[derive(Debug)]
pub struct HostLayer {
    cgroup: Option<Cgroup>,
    netns: Option<NetNs>,
    veth: Option<veth::Veth>,
    warnings: Vec<String>,
    record: Option<PathBuf>,
    /// Where the process and the entering thread were before [`HostLayer::enter`].
    origin: Option<(Option<PathBuf>, NetNs)>,
}

impl HostLayer {
    /// Makes the pod's cgroup (`<mount>/<parent>/<name>`), namespace and veth (host end
    /// `name`'s short hash), and records them in `record` (the pod directory's `host.json`).
    /// All or nothing: on error, what was made is removed again.
    pub fn create(
        config: &HostConfig,
        name: &str,
        record: Option<&Path>,
    ) -> Result<Self, HostError> {
        let mut layer = HostLayer {
            cgroup: None,
            netns: None,
            veth: None,
            warnings: Vec::new(),
            record: record.map(Path::to_owned),
            origin: None,
        };
        match layer.build(config, name) {
            Ok(()) => Ok(layer),
            Err(e) => {
                if let Err(cleanup) = layer.destroy() {
                    tracing::warn!(error = %cleanup, "cannot undo a half-made host layer");
                }
                Err(e)
            }
        }
    }

    fn build(&mut self, config: &HostConfig, name: &str) -> Result<(), HostError> {
        if let Some(parent) = &config.cgroup_parent {
            let mount = this_cgroup2_mount().ok_or(HostError::NoCgroup2)?;
            let (cgroup, warnings) = Cgroup::create(&mount, parent, name, config.limits)?;
            self.cgroup = Some(cgroup);
            self.warnings.extend(warnings);
        }
        self.netns = match &config.netns {
            NetnsMode::New => Some(NetNs::create()?),
            NetnsMode::Path(path) => Some(NetNs::open(path)?),
            NetnsMode::Host => None,
        };
        let Some(ip) = config.pod_ip else {
            return self.write_record(None);
        };
        match &self.netns {
            Some(netns) if netns.created() => {
                // Recorded before the pair is made, so a crash in between is cleaned up too.
                let name = veth_name(name);
                self.write_record(Some(&name))?;
                self.veth = Some(veth::Veth::create(&name, netns, ip)?);
                Ok(())
            }
            _ => {
                self.warnings.push(
                    "a pod IP needs a network namespace of the pod's own: no veth made".into(),
                );
                self.write_record(None)
            }
        }
    }

    fn write_record(&self, veth: Option<&str>) -> Result<(), HostError> {
        let Some(record) = &self.record else {
            return Ok(());
        };
        HostState {
            pid: std::process::id(),
            cgroup: self.cgroup.as_ref().map(|c| c.path().to_owned()),
            veth: veth.map(str::to_owned),
        }
        .write(record)
        .map_err(|e| HostError::io("write", record, e))
    }

    /// [`HostLayer::create`] then [`HostLayer::enter`], as the process holding one pod needs
    /// them, all or nothing: on failure the layer is undone, and the record's directory is
    /// removed when this call made it.
    pub fn establish(config: &HostConfig, name: &str, record: &Path) -> Result<Self, HostError> {
        let dir = record.parent().filter(|dir| !dir.exists());
        let established = HostLayer::create(config, name, Some(record)).and_then(|mut layer| {
            match layer.enter() {
                Ok(()) => Ok(layer),
                Err(e) => {
                    if let Err(cleanup) = layer.destroy() {
                        tracing::warn!(error = %cleanup, "cannot undo the host layer");
                    }
                    Err(e)
                }
            }
        });
        if established.is_err()
            && let Some(dir) = dir
        {
            let _ = std::fs::remove_dir_all(dir);
        }
        established
    }

    /// Moves this process into the pod's cgroup and the calling thread into its network
    /// namespace. Call it before starting the runtime's threads: they are born in the
    /// namespace.
    pub fn enter(&mut self) -> Result<(), HostError> {
        let origin_cgroup = this_cgroup2_mount().and_then(|mount| this_cgroup(&mount));
        let origin_netns = NetNs::current()?;
        if let Some(cgroup) = &self.cgroup {
            cgroup.add_process(std::process::id())?;
        }
        self.origin = Some((origin_cgroup, origin_netns));
        if let Some(netns) = &self.netns {
            netns.enter()?;
        }
        Ok(())
    }

    /// What went unenforced (missing cgroup controllers...), one line each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The pod's cgroup.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// The host end of the pod's veth pair, if it has one.
    pub fn veth(&self) -> Option<&str> {
        self.veth.as_ref().map(|v| v.name())
    }

    /// The pod's network namespace (`None` on the host's).
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_ref()
    }

    /// Leaves (when entered), deletes the veth, kills and removes the cgroup, closes the
    /// namespace and removes the record. Every step runs; the first error is returned.
    pub fn destroy(mut self) -> Result<(), HostError> {
        let mut first = None;
        let mut note = |result: Result<(), HostError>| {
            if let Err(e) = result {
                tracing::warn!(error = %e, "host layer teardown");
                first.get_or_insert(e);
            }
        };
        if let Some((cgroup, netns)) = self.origin.take() {
            note(netns.enter());
            if let (Some(origin), Some(_)) = (cgroup, &self.cgroup) {
                note(
                    std::fs::write(origin.join("cgroup.procs"), std::process::id().to_string())
                        .map_err(|e| HostError::io("leave cgroup", origin, e)),
                );
            }
        }
        if let Some(veth) = self.veth.take() {
            note(veth.delete());
        }
        if let Some(cgroup) = self.cgroup.take() {
            note(cgroup.destroy());
        }
        self.netns = None;
        if let Some(record) = &self.record
            && let Err(e) = std::fs::remove_file(record)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            note(Err(HostError::io("remove", record, e)));
        }
        first.map_or(Ok(()), Err)
    }
}

/// The host end of a pod's veth: `wp` and 12 hex digits of the pod's name (15 bytes at most,
/// the kernel's limit).
fn veth_name(pod: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(pod.as_bytes());
    format!("wp{}", &hex::encode(digest)[..12])
}

/// Whether this process may make cgroups and namespaces (it runs as root).
pub fn privileged() -> bool {
    rustix::process::geteuid().is_root()
}
