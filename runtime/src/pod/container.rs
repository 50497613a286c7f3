//! One container of a sandbox: its state machine and status.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::cli::StdinStream;

use super::{ContainerConfig, PodError};
use crate::engine::{ExitStatus, Image, Preopen, Usage};
use crate::logs::ContainerLog;
use crate::net::NameService;

/// Where a container is in its life: `Created → Running → Exited → Removed`; a created
/// container may also be removed without running. Each verb asks its guard (`can_*`) whether
/// the container's state allows it; `Removed` is the state of the status `remove` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Its guest runs.
    Running,
    /// Its guest ended.
    Exited,
    /// Removed from the sandbox: seen only in the final status `remove` returns.
    Removed,
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
            ContainerState::Removed => "removed",
        })
    }
}

impl ContainerState {
    /// Whether `start` is allowed.
    pub fn can_start(self) -> bool {
        self == ContainerState::Created
    }

    /// Whether `remove` is allowed: a running container must be stopped first.
    pub fn can_remove(self) -> bool {
        matches!(self, ContainerState::Created | ContainerState::Exited)
    }

    /// Whether `stop` and `kill` have a guest to end. Either is a no-op otherwise (as CRI's
    /// `StopContainer` is idempotent): a created container never ran, an exited one ended.
    pub fn can_stop(self) -> bool {
        self == ContainerState::Running
    }
}

/// A snapshot of a container, as CRI's `ContainerStatus` reports it.
#[derive(Debug, Clone)]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// Its state.
    pub state: ContainerState,
    /// The attempt (restart count) it was created for.
    pub attempt: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its guest started.
    pub started_at: Option<Timestamp>,
    /// When its guest ended.
    pub finished_at: Option<Timestamp>,
    /// How its guest ended.
    pub exit: Option<ExitStatus>,
    /// Its CRI log file; `None` when the sandbox writes none
    /// ([`SandboxConfig::logs`](crate::SandboxConfig::logs)).
    pub log_path: Option<PathBuf>,
    /// Its CPU time and memory.
    pub usage: Arc<Usage>,
}

/// A guest's stdin stream.
pub(super) struct Stdin(pub(super) Box<dyn StdinStream + Sync>);

impl std::fmt::Debug for Stdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stdin")
    }
}

#[derive(Debug)]
pub(super) struct Container {
    pub(super) config: ContainerConfig,
    pub(super) image: Image,
    pub(super) state: ContainerState,
    pub(super) created_at: Timestamp,
    pub(super) started_at: Option<Timestamp>,
    pub(super) finished_at: Option<Timestamp>,
    pub(super) log_path: Option<PathBuf>,
    pub(super) usage: Arc<Usage>,
    /// Host side of the container's [`super::CONTROL_DIR`].
    pub(super) control_dir: PathBuf,
    /// What its guests get preopened: its mounts (subPaths resolved), its working directory
    /// and its control directory, held open since `create`.
    pub(super) preopens: Vec<Preopen>,
    /// Its name service (from its rootfs's `/etc/hosts` and `/etc/resolv.conf`), when it has
    /// a rootfs.
    pub(super) names: Option<NameService>,
    /// Its log, once started: the preStop hook writes there too.
    pub(super) log: ContainerLog,
    /// Its guest's stdin, when attached before the start ([`super::Sandbox::attach_stdin`]).
    pub(super) stdin: Option<Stdin>,
    /// Cancelled to hard-stop the guest.
    pub(super) stop: CancellationToken,
    /// Cancelled with the termination request: a `wasi:http` service stops accepting and
    /// drains (a command reads the request from its termination file).
    pub(super) terminate: CancellationToken,
    /// `Some` once the guest ended; waiters watch it.
    pub(super) exit: watch::Sender<Option<ExitStatus>>,
}

impl Container {
    pub(super) fn new(
        config: ContainerConfig,
        image: Image,
        log: ContainerLog,
        log_path: Option<PathBuf>,
        control_dir: PathBuf,
        preopens: Vec<Preopen>,
        names: Option<NameService>,
    ) -> Self {
        Container {
            config,
            image,
            state: ContainerState::Created,
            created_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
            log_path,
            usage: Arc::default(),
            control_dir,
            preopens,
            names,
            log,
            stdin: None,
            stop: CancellationToken::new(),
            terminate: CancellationToken::new(),
            exit: watch::Sender::new(None),
        }
    }

    pub(super) fn status(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.config.spec.name.clone(),
            image: self.config.spec.image.clone(),
            state: self.state,
            attempt: self.config.attempt,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            exit: self.exit.borrow().clone(),
            log_path: self.log_path.clone(),
            usage: self.usage.clone(),
        }
    }

    /// Whether the move to `to` is `allowed` from the current state; the error names it.
    pub(super) fn check(
        &self,
        to: ContainerState,
        allowed: fn(ContainerState) -> bool,
    ) -> Result<(), PodError> {
        if allowed(self.state) {
            Ok(())
        } else {
            Err(PodError::BadTransition {
                name: self.config.spec.name.clone(),
                from: self.state,
                to,
            })
        }
    }
}
