//! What the task service needs from a pod runtime: a small trait, so the service's logic
//! (task table, states, signals, events) is tested against a stub, and [`WasmpodRuntime`], the
//! real one over [`wasmpod::Sandbox`].

mod rootfs;
mod stdio;
mod tty;
mod wasmpod_runtime;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use wasmpod::ExitStatus;

pub use rootfs::{RootfsMount, unmount as unmount_rootfs};
pub use wasmpod_runtime::{HostSetup, WasmpodRuntime};

use crate::bundle::{ContainerRequest, SandboxRequest};
use crate::error::TaskError;

/// The stdio containerd gives a task: FIFO paths (empty when not attached).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    /// The stdin FIFO: an exec'd process's stdin, or a container's (`stdin: true`); without
    /// it, stdin reads as empty.
    pub stdin: Option<PathBuf>,
    /// The stdout FIFO: the guest's stdout is copied there.
    pub stdout: Option<PathBuf>,
    /// The stderr FIFO: the guest's stderr is copied there.
    pub stderr: Option<PathBuf>,
    /// A terminal was asked for: stdout and stderr both go to `stdout`, stdin through a line
    /// discipline.
    pub terminal: bool,
}

/// A container's CPU time and memory, or the whole pod's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used.
    pub cpu: Duration,
    /// Bytes of memory held now.
    pub memory: u64,
    /// The most ever held.
    pub memory_peak: u64,
}

/// A pod runtime the task service drives: one pod sandbox per shim process, containers in it
/// by task id.
#[async_trait]
pub trait PodRuntime: Send + Sync + 'static {
    /// Creates the pod sandbox.
    async fn create_sandbox(&self, sandbox: &SandboxRequest) -> Result<(), TaskError>;

    /// Creates a container in the sandbox: mounts its rootfs (at `rootfs_dir`, from
    /// `rootfs`), finds and loads its module, prepares its mounts and opens its stdio.
    async fn create_container(
        &self,
        container: &ContainerRequest,
        stdio: &Stdio,
        rootfs: &[RootfsMount],
        rootfs_dir: &std::path::Path,
    ) -> Result<(), TaskError>;

    /// Starts a created container.
    fn start_container(&self, id: &str) -> Result<(), TaskError>;

    /// Waits until the container exited and its output reached its stdio, which is then
    /// closed.
    async fn wait_container(&self, id: &str) -> Result<ExitStatus, TaskError>;

    /// Graceful stop: the termination request, then a hard stop once `grace` is over.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), TaskError>;

    /// Hard stop, at once.
    fn kill_container(&self, id: &str) -> Result<(), TaskError>;

    /// Removes a container that is not running, and unmounts its rootfs.
    fn remove_container(&self, id: &str) -> Result<(), TaskError>;

    /// Runs `argv` inside running container `id` (CRI `Exec`, `kubectl exec`) to its end,
    /// with `stdio`'s FIFOs as its stdin, stdout and stderr; `kill` ends it at once.
    async fn exec_in_container(
        &self,
        id: &str,
        argv: Vec<String>,
        stdio: &Stdio,
        kill: tokio_util::sync::CancellationToken,
    ) -> Result<ExitStatus, TaskError>;

    /// Sets a container's memory limit (bytes) and CPU limit (millicores); `None` lifts it.
    fn update_container(
        &self,
        id: &str,
        memory_limit: Option<u64>,
        cpu_limit: Option<u64>,
    ) -> Result<(), TaskError>;

    /// A container's usage.
    fn container_usage(&self, id: &str) -> Result<Usage, TaskError>;

    /// The whole pod's usage (its cgroup's when it has one).
    fn sandbox_usage(&self) -> Usage;

    /// Deletes the sandbox and everything it made on the host.
    async fn delete_sandbox(&self) -> Result<(), TaskError>;
}
