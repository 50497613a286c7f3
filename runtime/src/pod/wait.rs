//! `wait`: until a container's guest ended.

use super::Sandbox;
use crate::engine::ExitStatus;
use crate::error::Result;

impl Sandbox {
    /// Waits until container `name` exited and returns how. Works for a container that already
    /// exited; a container that never starts keeps the waiter waiting (use a deadline).
    #[tracing::instrument(level = "trace", skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub async fn wait_container(&self, name: &str) -> Result<ExitStatus> {
        let mut exit = {
            let state = self.lock();
            self.find(&state, name)?.exit.subscribe()
        };
        let status = exit
            .wait_for(Option::is_some)
            .await
            .map(|status| status.clone())
            .ok()
            .flatten();
        // The sender lives in the container record; it is only dropped by `remove`, which
        // refuses running containers, so a closed channel means the container is gone.
        status.ok_or_else(|| self.not_found(name).into())
    }
}
