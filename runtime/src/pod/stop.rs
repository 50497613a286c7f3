//! `stop`: graceful termination of one container, as CRI's `StopContainer(timeout)`.
//!
//! WASI has no signals, so the termination request is a file: `terminating` appears in the
//! container's read-only [`CONTROL_DIR`](super::CONTROL_DIR) (its path is in the guest's
//! environment as `WASMPOD_TERMINATION_FILE`). A guest checks for it between units of work and
//! exits cleanly; one that ignores it is hard-stopped when the grace period ends (exit 137).

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{ContainerState, Sandbox, TERMINATION_FILE};
use crate::engine::ExitStatus;
use crate::error::{Error, Result};

impl Sandbox {
    /// Stops container `name` within `grace`: its preStop hook (whose time counts against
    /// `grace`), then the termination request, then, when `grace` is over, a hard stop.
    /// Returns how it ended; `None` for a container that never started.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name, ?grace))]
    pub async fn stop_container(&self, name: &str, grace: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + grace;
        let (state, control_dir, terminate) = {
            let state = self.lock();
            let container = self.find(&state, name)?;
            (
                container.state,
                container.control_dir.clone(),
                container.terminate.clone(),
            )
        };
        if !state.can_stop() {
            return match state {
                ContainerState::Exited => self.wait_container(name).await.map(Some),
                _ => Ok(None),
            };
        }
        tracing::debug!(
            pod = self.shared.config.name,
            container = name,
            ?grace,
            "stopping container"
        );
        if tokio::time::timeout_at(deadline, self.run_pre_stop(name))
            .await
            .is_err()
        {
            tracing::info!(container = name, "preStop hook outlived the grace period");
        }
        // A service drains at once; a command is told through its termination file.
        terminate.cancel();
        request_termination(&control_dir, "TERM")?;
        if let Ok(exit) = tokio::time::timeout_at(deadline, self.wait_container(name)).await {
            return exit.map(Some);
        }
        tracing::info!(
            container = name,
            ?grace,
            "grace period over, killing container"
        );
        self.kill_container(name)?;
        self.wait_container(name).await.map(Some)
    }

    /// Runs the container's preStop hook, if it has one, to its end. A failing hook is
    /// logged (Kubernetes' `FailedPreStopHook`) and termination goes on.
    async fn run_pre_stop(&self, name: &str) {
        let hook = {
            let state = self.lock();
            let Ok(container) = self.find(&state, name) else {
                return;
            };
            container.config.spec.pre_stop.clone()
        };
        let Some(hook) = hook else {
            return;
        };
        match self.run_handler(name, &hook, None).await {
            Ok(()) => tracing::debug!(container = name, "preStop hook completed"),
            Err(message) => tracing::warn!(container = name, message, "FailedPreStopHook"),
        }
    }
}

/// Writes the termination file atomically, so a guest never reads half of it.
fn request_termination(control_dir: &Path, reason: &str) -> Result<()> {
    let path = control_dir.join(TERMINATION_FILE);
    let tmp = control_dir.join(format!(".{TERMINATION_FILE}"));
    std::fs::write(&tmp, format!("{reason}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io("write termination request", path, e))
}
