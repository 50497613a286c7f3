//! `update`: changes a container's memory and CPU limits in place (CRI
//! `UpdateContainerResources`, a pod resize), without restarting it.

use super::Sandbox;
use crate::error::Result;

impl Sandbox {
    /// Sets container `name`'s memory and CPU limits (`None`: no limit of that kind, so the
    /// engine's default memory cap and no CPU throttle). A running guest is held to them from
    /// its next memory growth and its next scheduling tick on; later runs (a restart, an
    /// exec, the preStop hook) get them too. Memory a guest holds already is never taken back:
    /// a limit below it refuses every further growth. A request above its new limit is
    /// lowered to it.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub fn update_resources(
        &self,
        name: &str,
        memory_limit: Option<u64>,
        cpu_limit: Option<u64>,
    ) -> Result<()> {
        let mut state = self.lock();
        self.ensure_alive(&state)?;
        let not_found = self.not_found(name);
        let container = state.containers.get_mut(name).ok_or(not_found)?;
        let resources = &mut container.config.spec.resources;
        resources.memory_limit = memory_limit;
        resources.cpu_limit = cpu_limit;
        // A request never exceeds its limit (Kubernetes defaults a missing one to it).
        let clamp = |request: Option<u64>, limit: Option<u64>| match (request, limit) {
            (Some(request), Some(limit)) => Some(request.min(limit)),
            (None, limit) => limit,
            (request, None) => request,
        };
        resources.memory_request = clamp(resources.memory_request, memory_limit);
        resources.cpu_request = clamp(resources.cpu_request, cpu_limit);
        container
            .usage
            .set_memory_limit(memory_limit.unwrap_or(self.shared.engine.default_memory_limit()));
        container.usage.set_cpu_limit(cpu_limit);
        tracing::info!(
            pod = self.shared.config.name,
            container = name,
            memory_limit,
            cpu_limit,
            "resources updated"
        );
        Ok(())
    }
}
