//! `kill`: hard-stops a running container (its guest is dropped at its next yield).

use super::Sandbox;
use crate::error::Result;

impl Sandbox {
    /// Hard-stops container `name` (exit code 137). A container that is not running is left
    /// as it is.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub fn kill_container(&self, name: &str) -> Result<()> {
        let state = self.lock();
        let container = self.find(&state, name)?;
        if container.state.can_stop() {
            tracing::debug!(
                pod = self.shared.config.name,
                container = name,
                "killing container"
            );
            container.stop.cancel();
            // Bring every guest to its next yield now rather than at the next tick, so the
            // stopped one is dropped at once; the others just yield once more.
            self.shared.engine.interrupt_all();
        }
        Ok(())
    }
}
