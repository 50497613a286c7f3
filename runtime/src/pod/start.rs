//! `start`: runs a created container's guest as a task on the current tokio runtime.

use std::sync::Arc;

use jiff::Timestamp;

use wasmtime_wasi::cli::StdinStream;

use super::container::{Container, Stdin};

use super::{CONTROL_DIR, ContainerState, Sandbox, TERMINATION_FILE, TERMINATION_FILE_ENV};
use crate::engine::{ExitStatus, GuestIo, Invocation, ServiceConfig, ServiceListeners};
use crate::error::Result;
use crate::logs::{LogObserver, LogStream};

impl Sandbox {
    /// Starts container `name`: it must be `Created`. Returns once the guest is running; its
    /// end is observed with [`Sandbox::wait_container`].
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub fn start_container(&self, name: &str) -> Result<()> {
        let mut state = self.lock();
        self.ensure_alive(&state)?;
        let container = state
            .containers
            .get_mut(name)
            .ok_or_else(|| self.not_found(name))?;
        container.check(ContainerState::Running, ContainerState::can_start)?;
        let invocation = self.invocation(container, container.config.spec.argv.clone());
        let log = container.log.clone();
        container.state = ContainerState::Running;
        container.started_at = Some(Timestamp::now());

        let io = GuestIo {
            stdout: Box::new(log.stream(LogStream::Stdout)),
            stderr: Box::new(log.stream(LogStream::Stderr)),
        };
        let image = container.image.clone();
        let stdin = container.stdin.take().map(|stdin| stdin.0);
        let stop = container.stop.clone();
        // A service listens before it is reported running; a port it cannot have is its
        // start error.
        let service = image.is_service().then(|| {
            let port = service_port(&container.config.spec.ports);
            let config = ServiceConfig {
                port,
                limits: self.shared.config.services,
            };
            ServiceListeners::bind(&self.shared.network, config)
                .map_err(|e| format!("listen on port {port}: {e}"))
        });
        let terminate = container.terminate.clone();
        let engine = self.shared.engine.clone();
        let sandbox = self.clone();
        let name = name.to_owned();
        tracing::debug!(
            pod = self.shared.config.name,
            container = name,
            "container started"
        );
        tokio::spawn(async move {
            let exit = match service {
                None => {
                    engine
                        .run_with_stdin(&image, invocation, stdin, io, stop.clone())
                        .await
                }
                Some(Ok(listeners)) => {
                    engine
                        .serve(&image, invocation, listeners, io, stop.clone(), terminate)
                        .await
                }
                Some(Err(message)) => ExitStatus::start_error(message),
            };
            // Processes exec'd into the container end with it.
            stop.cancel();
            log.finish();
            tracing::debug!(
                pod = sandbox.shared.config.name,
                container = name,
                code = exit.code,
                reason = exit.reason.as_str(),
                "container exited"
            );
            let mut state = sandbox.lock();
            if let Some(container) = state.containers.get_mut(&name) {
                container.state = ContainerState::Exited;
                container.finished_at = Some(Timestamp::now());
                container.exit.send_replace(Some(exit));
            }
        });
        Ok(())
    }

    /// Gives created container `name`'s guest `stdin` (CRI's `stdin: true`, `kubectl run -i`,
    /// `kubectl attach -i`); without it, the guest's stdin reads as empty.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name))]
    pub fn attach_stdin(&self, name: &str, stdin: Box<dyn StdinStream + Sync>) -> Result<()> {
        let mut state = self.lock();
        let container = state
            .containers
            .get_mut(name)
            .ok_or_else(|| self.not_found(name))?;
        container.check(ContainerState::Running, ContainerState::can_start)?;
        container.stdin = Some(Stdin(stdin));
        Ok(())
    }

    /// What a guest of `container` sees: its argv, env (with `HOSTNAME` and the termination
    /// file), the preopens resolved at `create`, working directory and limits. The
    /// container's own guest and its preStop hook both run with it.
    pub(super) fn invocation(&self, container: &Container, argv: Vec<String>) -> Invocation {
        let spec = &container.config.spec;
        let mut env = Vec::with_capacity(spec.env.len() + 2);
        if !spec.env.iter().any(|(k, _)| k == "HOSTNAME") {
            env.push(("HOSTNAME".to_owned(), self.shared.config.hostname.clone()));
        }
        env.push((
            TERMINATION_FILE_ENV.to_owned(),
            format!("{CONTROL_DIR}/{TERMINATION_FILE}"),
        ));
        env.extend(spec.env.iter().cloned());
        Invocation {
            argv,
            env,
            preopens: container.preopens.clone(),
            cwd: spec.working_dir.clone(),
            memory_limit: spec.resources.memory_limit,
            cpu_limit_millis: spec.resources.cpu_limit,
            usage: container.usage.clone(),
            network: self.shared.network.clone(),
            names: container.names.clone(),
        }
    }

    pub(super) fn log_observer(&self, name: &str) -> Option<LogObserver> {
        let observer = self.shared.config.log_observer.clone()?;
        let name = name.to_owned();
        Some(Arc::new(move |stream, line, partial| {
            observer(&name, stream, line, partial)
        }))
    }
}

/// The port a `wasi:http` service listens on: the container's first `containerPort`, else
/// 8080 (`wasmtime serve`'s).
fn service_port(ports: &[u16]) -> u16 {
    ports.first().copied().unwrap_or(DEFAULT_SERVICE_PORT)
}

/// Where a `wasi:http` service without a `containerPort` listens, as `wasmtime serve` does.
pub const DEFAULT_SERVICE_PORT: u16 = 8080;
