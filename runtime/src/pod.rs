//! The pod sandbox and its containers, shaped like CRI.
//!
//! A [`Sandbox`] (volumes, identity, logs; later the host layer and virtual network) is created
//! first and lives on its own. Containers are then created, started, waited on, stopped and
//! removed one by one, by name, at any time while the sandbox lives: kubelet restarts a
//! container by removing it and creating a new one in the same sandbox, and so does
//! [`crate::runner`]. One file per verb under `pod/`; a container's [`ContainerState`] guards
//! every transition, and a refused one is an error naming `{from, to}`.

mod container;
mod create;
mod delete;
mod dir;
mod exec;
mod handler;
mod kill;
mod start;
mod stop;
mod update;
mod wait;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use container::Container;
pub use container::{ContainerState, ContainerStatus};
pub use dir::PodDir;
pub use exec::{DEFAULT_PATH, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, ExecConfig};

use crate::engine::{Engine, Image};
use crate::error::{ErrorKind, Result};
use crate::logs::{LogSink, LogStream};
use crate::net::{Network, NetworkConfig};
use crate::spec::{ContainerSpec, PodSpec, VolumeSpec};
use crate::volume::Volumes;

/// A lifecycle verb was refused.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// No container by that name in this sandbox.
    #[error("container {name:?} not found in pod {pod:?}")]
    NotFound {
        /// The pod.
        pod: String,
        /// The container.
        name: String,
    },
    /// A container by that name already exists.
    #[error("container {name:?} already exists in pod {pod:?}")]
    AlreadyExists {
        /// The pod.
        pod: String,
        /// The container.
        name: String,
    },
    /// The container's state does not allow the transition.
    #[error("container {name:?}: cannot go from {from} to {to}")]
    BadTransition {
        /// The container.
        name: String,
        /// Its current state.
        from: ContainerState,
        /// The state asked for.
        to: ContainerState,
    },
    /// The container is not running (exec needs its guest running).
    #[error("container {name:?} is {state}, not running")]
    NotRunning {
        /// The container.
        name: String,
        /// Its state.
        state: ContainerState,
    },
    /// The sandbox was deleted.
    #[error("pod {pod:?} is deleted")]
    Deleted {
        /// The pod.
        pod: String,
    },
    /// The container could not be set up (its log file, its mounts).
    #[error("container {name:?}: {source}")]
    Setup {
        /// The container.
        name: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
}

impl PodError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            PodError::NotFound { .. } => ErrorKind::NotFound,
            PodError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            PodError::BadTransition { .. }
            | PodError::NotRunning { .. }
            | PodError::Deleted { .. } => ErrorKind::FailedPrecondition,
            PodError::Setup { source, .. } => source.kind(),
        }
    }
}

/// Where every container finds the runtime's files: a read-only directory preopened at this
/// guest path.
pub const CONTROL_DIR: &str = "/run/wasmpod";
/// The file that appears in [`CONTROL_DIR`] when the container is asked to terminate (WASI has
/// no signals); it holds the reason, e.g. `TERM`. Its path is also in the guest's environment
/// as [`TERMINATION_FILE_ENV`].
pub const TERMINATION_FILE: &str = "terminating";
/// The environment variable holding the termination file's guest path.
pub const TERMINATION_FILE_ENV: &str = "WASMPOD_TERMINATION_FILE";

/// Sees every line a guest writes: `(container, stream, content, partial)`.
pub type PodLogObserver = Arc<dyn Fn(&str, LogStream, &str, bool) + Send + Sync>;

/// What a sandbox's containers use together ([`Sandbox::usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// CPU time of every container's guests.
    pub cpu_time: std::time::Duration,
    /// Bytes of linear memory and tables held now.
    pub memory: u64,
    /// The sum of each container's peak.
    pub memory_peak: u64,
}

/// What a sandbox is made of.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's uid.
    pub uid: String,
    /// The hostname every container sees as `HOSTNAME`.
    pub hostname: String,
    /// The pod's volumes.
    pub volumes: Vec<VolumeSpec>,
    /// The pod's directory (its layout: [`PodDir`]).
    pub dir: PathBuf,
    /// Sees every guest output record as it is written.
    pub log_observer: Option<PodLogObserver>,
    /// Where guests' output is kept besides `log_observer`: CRI log files in the pod
    /// directory ([`PodDir::log_file`]), memory, or nowhere (the shim: containerd writes the
    /// CRI files from its FIFOs). Default: files, rotated as kubelet rotates them.
    pub logs: LogSink,
    /// Keep the emptyDirs when the sandbox is deleted (a test harness inspects them, then
    /// removes `dir`). Default: false.
    pub retain_volumes: bool,
    /// The pod's network: policy, buffers, socket cap. Default: [`NetworkConfig::default`].
    pub network: NetworkConfig,
    /// How many requests each `wasi:http` service container takes at once. Default:
    /// [`ServiceLimits::default`](crate::engine::ServiceLimits).
    pub services: crate::engine::ServiceLimits,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("uid", &self.uid)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SandboxConfig {
    /// A sandbox named `name` (also its hostname and uid) in namespace `default`, kept under
    /// `dir`, without volumes.
    pub fn new(name: &str, dir: PathBuf) -> Self {
        SandboxConfig {
            name: name.to_owned(),
            namespace: "default".to_owned(),
            uid: name.to_owned(),
            hostname: name.to_owned(),
            volumes: Vec::new(),
            dir,
            log_observer: None,
            logs: LogSink::default(),
            retain_volumes: false,
            network: NetworkConfig::default(),
            services: crate::engine::ServiceLimits::default(),
        }
    }

    /// The sandbox of `spec`, kept under `dir`.
    pub fn for_pod(spec: &PodSpec, dir: PathBuf) -> Self {
        SandboxConfig {
            namespace: spec.namespace.clone(),
            uid: spec.uid.clone(),
            hostname: spec.hostname.clone(),
            volumes: spec.volumes.clone(),
            ..SandboxConfig::new(&spec.name, dir)
        }
    }
}

/// What a container is made of: its spec and which run of it this is.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The container: name (unique within the sandbox), module, argv, env, mounts...
    /// `HOSTNAME` is added to its env unless given.
    pub spec: ContainerSpec,
    /// How many times this container was restarted before: names its log file.
    pub attempt: u32,
    /// The container's image, when the caller loaded it already (a pod process loads every
    /// image before anything starts); otherwise `create_container` loads `spec.module`.
    pub image: Option<Image>,
    /// The name people know the container by, when `spec.name` is an id (under CRI, the
    /// Kubernetes container name): what the toolbox's `ps` shows.
    pub display_name: Option<String>,
}

impl ContainerConfig {
    /// The `attempt`-th run of `spec`.
    pub fn new(spec: ContainerSpec, attempt: u32) -> Self {
        ContainerConfig {
            spec,
            attempt,
            image: None,
            display_name: None,
        }
    }

    /// This config shown as `name` (see [`ContainerConfig::display_name`]).
    pub fn with_display_name(mut self, name: Option<String>) -> Self {
        self.display_name = name;
        self
    }

    /// This config with its image already loaded.
    pub fn with_image(mut self, image: Option<Image>) -> Self {
        self.image = image;
        self
    }
}

/// A pod sandbox: shared volumes and identity, and the containers running in it. Cheap to
/// clone; clones are the same sandbox.
#[derive(Clone, Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    engine: Engine,
    config: SandboxConfig,
    /// The pod's virtual network, shared by its containers.
    network: Network,
    state: Mutex<SandboxState>,
}

#[derive(Debug)]
struct SandboxState {
    volumes: Volumes,
    containers: BTreeMap<String, Container>,
    deleted: bool,
}

impl Sandbox {
    /// The sandbox's configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// The pod's directory.
    pub fn dir(&self) -> PodDir {
        PodDir::new(&self.shared.config.dir)
    }

    /// The pod's network (its counters are in [`Network::stats`]).
    pub fn network(&self) -> &Network {
        &self.shared.network
    }

    /// The host directory of volume `name`, as it was named when the sandbox was created.
    pub fn volume_path(&self, name: &str) -> Option<PathBuf> {
        self.lock().volumes.host_path(name).map(Into::into)
    }

    /// The open directory of volume `name`: paths under it are resolved beneath it, never
    /// following a link a guest planted out of it.
    pub fn volume_dir(&self, name: &str) -> Option<crate::hostdir::HostDir> {
        self.lock().volumes.dir(name).cloned()
    }

    /// What the sandbox's containers use together: their CPU time, the memory they hold now,
    /// and the sum of their peaks (each container's own, so an upper bound of the pod's).
    #[tracing::instrument(level = "trace", skip_all, fields(pod = %self.shared.config.name))]
    pub fn usage(&self) -> PodUsage {
        let state = self.lock();
        state
            .containers
            .values()
            .fold(PodUsage::default(), |total, c| PodUsage {
                cpu_time: total.cpu_time + c.usage.cpu_time(),
                memory: total.memory + c.usage.memory(),
                memory_peak: total.memory_peak + c.usage.memory_peak(),
            })
    }

    /// The statuses of every container, by name.
    #[tracing::instrument(level = "trace", skip_all, fields(pod = %self.shared.config.name))]
    pub fn container_statuses(&self) -> HashMap<String, ContainerStatus> {
        let state = self.lock();
        state
            .containers
            .iter()
            .map(|(name, c)| (name.clone(), c.status()))
            .collect()
    }

    /// The status of container `name`.
    #[tracing::instrument(level = "trace", skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub fn container_status(&self, name: &str) -> Result<ContainerStatus> {
        let state = self.lock();
        Ok(self.find(&state, name)?.status())
    }

    fn lock(&self) -> MutexGuard<'_, SandboxState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn find<'a>(&self, state: &'a SandboxState, name: &str) -> Result<&'a Container, PodError> {
        state
            .containers
            .get(name)
            .ok_or_else(|| self.not_found(name))
    }

    fn not_found(&self, name: &str) -> PodError {
        PodError::NotFound {
            pod: self.shared.config.name.clone(),
            name: name.to_owned(),
        }
    }

    fn ensure_alive(&self, state: &SandboxState) -> Result<(), PodError> {
        if state.deleted {
            return Err(PodError::Deleted {
                pod: self.shared.config.name.clone(),
            });
        }
        Ok(())
    }
}
