//! `remove` a container; `delete` the whole sandbox.

use super::{ContainerState, ContainerStatus, Sandbox};
use crate::error::Result;

impl Sandbox {
    /// Removes container `name`: it must not be running. Returns its final status (state
    /// [`ContainerState::Removed`], its exit and usage). Its log file stays (as kubelet keeps
    /// a pod's logs until the pod is deleted).
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub fn remove_container(&self, name: &str) -> Result<ContainerStatus> {
        let mut state = self.lock();
        self.find(&state, name)?
            .check(ContainerState::Removed, ContainerState::can_remove)?;
        let container = state
            .containers
            .remove(name)
            .ok_or_else(|| self.not_found(name))?;
        remove_dir(&container.control_dir);
        let mut status = container.status();
        status.state = ContainerState::Removed;
        Ok(status)
    }

    /// Deletes the sandbox: hard-stops every running container, waits for them, removes them
    /// and removes the volumes wasmpod created. The pod directory's logs stay for the caller.
    /// Idempotent.
    #[tracing::instrument(name = "delete_sandbox", skip_all, fields(pod = %self.shared.config.name))]
    pub async fn delete(&self) -> Result<()> {
        let names: Vec<String> = {
            let mut state = self.lock();
            state.deleted = true;
            state.containers.keys().cloned().collect()
        };
        for name in &names {
            self.kill_container(name)?;
        }
        for name in &names {
            self.wait_running(name).await;
        }
        let mut state = self.lock();
        state.containers.clear();
        self.shared.network.close();
        let dir = self.dir();
        remove_dir(&dir.control_root());
        if !self.shared.config.retain_volumes {
            state.volumes.remove();
            remove_dir(&dir.volumes());
        }
        tracing::debug!(pod = self.shared.config.name, "sandbox deleted");
        Ok(())
    }

    /// Waits for a container that was started to end; returns at once for any other.
    async fn wait_running(&self, name: &str) {
        let running = {
            let state = self.lock();
            state
                .containers
                .get(name)
                .is_some_and(|c| c.state == ContainerState::Running)
        };
        if running {
            let _ = self.wait_container(name).await;
        }
    }
}

/// Removes a directory wasmpod made; failures are logged (teardown must not hide the primary
/// error).
fn remove_dir(path: &std::path::Path) {
    if let Err(error) = crate::hostdir::remove_tree(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %path.display(), %error, "cannot remove directory");
    }
}
