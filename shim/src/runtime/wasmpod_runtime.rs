//! [`PodRuntime`] over wasmpod's [`Sandbox`]: one pod per shim process, its host layer (cgroup,
//! network namespace) prepared by the bootstrap before the runtime's threads started.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use wasmpod::engine::GuestIo;
use wasmpod::host::HostError;
use wasmpod::hostdir::HostDir;
use wasmpod::pod::{ExecConfig, PodDir};
use wasmpod::runner::PodHost;
use wasmpod::{ContainerConfig, Engine, ExitStatus, Sandbox, SandboxConfig};
use wasmtime_wasi::cli::{OutputFile, StdinStream, StdoutStream};

use super::rootfs::{self, RootfsMount};
use super::stdio::{Sinks, guest_stdin, open_output};
use super::tty::TerminalOutput;
use super::{PodRuntime, Stdio, Usage};
use crate::bundle::{ContainerRequest, SandboxRequest};
use crate::error::TaskError;
use crate::layers::ContentStore;
use crate::task::TERM_GRACE;

/// What the bootstrap made of the pod's host side, before any thread started (with a host
/// layer when the shim is privileged): `Ok(None)` when the process's first task is not a pod
/// sandbox (a `ctr run` container), whose host side is made with the sandbox.
pub type HostSetup = Result<Option<PodHost>, HostError>;

/// The real runtime: a wasmpod sandbox, its containers' stdio and rootfs mounts.
#[derive(Debug)]
pub struct WasmpodRuntime {
    engine: Engine,
    state_root: PathBuf,
    sinks: Arc<Sinks>,
    /// Where modules shipped as Wasm OCI layers are read from (none in tests without
    /// containerd).
    content: Option<ContentStore>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Taken by `create_sandbox`.
    host_setup: Option<HostSetup>,
    host: Option<PodHost>,
    sandbox: Option<Sandbox>,
    /// Mounted rootfs directories, by container id.
    rootfs: HashMap<String, PathBuf>,
}

impl WasmpodRuntime {
    /// A runtime on `engine` keeping pod directories under `state_root`, with the host layer
    /// the bootstrap prepared, reading Wasm OCI layers from `content`.
    pub fn new(
        engine: Engine,
        state_root: PathBuf,
        host_setup: HostSetup,
        content: Option<ContentStore>,
    ) -> Self {
        WasmpodRuntime {
            engine,
            state_root,
            sinks: Arc::default(),
            content,
            inner: Mutex::new(Inner {
                host_setup: Some(host_setup),
                host: None,
                sandbox: None,
                rootfs: HashMap::new(),
            }),
        }
    }

    /// When container `id`'s image ships its module as a Wasm OCI layer, writes the module
    /// into the pod's directory and returns its path.
    async fn layer_module(&self, id: &str, sandbox: &Sandbox) -> Option<PathBuf> {
        let layers = match self.content.as_ref()?.wasm_layers(id).await {
            Ok(layers) => layers,
            Err(error) => {
                tracing::warn!(container = id, %error, "cannot read the image's Wasm layers");
                return None;
            }
        };
        if layers.len() > 1 {
            tracing::warn!(
                container = id,
                layers = layers.len(),
                "running the first Wasm layer"
            );
        }
        let module = layers.into_iter().next()?;
        let dir = sandbox.dir().modules();
        let path = dir.join(format!("{id}.wasm"));
        let written = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(&path, module).await
        };
        match written.await {
            Ok(()) => Some(path),
            Err(error) => {
                tracing::warn!(container = id, %error, path = %path.display(), "cannot write the module");
                None
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sandbox(&self) -> Result<Sandbox, TaskError> {
        self.lock()
            .sandbox
            .clone()
            .ok_or_else(|| TaskError::NotFound {
                id: "pod sandbox".into(),
            })
    }

    fn unmount(&self, id: &str) {
        let Some(dir) = self.lock().rootfs.remove(id) else {
            return;
        };
        if let Err(error) = rootfs::unmount(&dir) {
            tracing::warn!(container = id, %error, "cannot unmount rootfs");
        }
    }
}

/// Whether the container's module is a file of its rootfs, looked up beneath the rootfs.
fn in_rootfs(spec: &wasmpod::spec::ContainerSpec) -> bool {
    match &spec.rootfs {
        None => spec.module.is_file(),
        Some(rootfs) => HostDir::open(rootfs).is_ok_and(|root| root.is_file(&spec.module)),
    }
}

#[async_trait]
impl PodRuntime for WasmpodRuntime {
    async fn create_sandbox(&self, request: &SandboxRequest) -> Result<(), TaskError> {
        let setup = self.lock().host_setup.take();
        let host = match setup {
            Some(Err(error)) => return Err(TaskError::Runtime(error.into())),
            Some(Ok(Some(host))) => host,
            // No host layer to make: nothing blocks.
            Some(Ok(None)) | None => {
                PodHost::establish(PodDir::new(self.state_root.join(&request.id)), None)
                    .map_err(|error| TaskError::Runtime(error.into()))?
            }
        };
        let mut config = SandboxConfig::new(&request.name, host.dir().path().to_owned());
        config.namespace.clone_from(&request.namespace);
        config.uid.clone_from(&request.uid);
        config.hostname.clone_from(&request.hostname);
        // Guests' output goes to containerd's FIFOs only: containerd writes the CRI log files.
        config.log_observer = Some(self.sinks.observer());
        config.logs = wasmpod::logs::LogSink::ObserverOnly;
        match Sandbox::create(&self.engine, config).await {
            Ok(sandbox) => {
                let mut inner = self.lock();
                inner.sandbox = Some(sandbox);
                inner.host = Some(host);
                tracing::info!(
                    pod = request.name,
                    namespace = request.namespace,
                    "pod sandbox created"
                );
                Ok(())
            }
            Err(error) => {
                let undone = wasmpod::blocking::unblocked(move || host.teardown(true)).await;
                if let Some(cleanup) = undone.error {
                    tracing::warn!(error = %cleanup, "cannot undo the host layer");
                }
                Err(error.into())
            }
        }
    }

    async fn create_container(
        &self,
        container: &ContainerRequest,
        stdio: &Stdio,
        mounts: &[RootfsMount],
        rootfs_dir: &Path,
    ) -> Result<(), TaskError> {
        let sandbox = self.sandbox()?;
        let id = container.id.clone();
        let owned_mounts = mounts.to_vec();
        let dir = rootfs_dir.to_owned();
        let binds = container.file_binds.clone();
        tokio::task::spawn_blocking(move || rootfs::mount(&owned_mounts, &binds, &dir))
            .await
            .map_err(|e| TaskError::io("mount", rootfs_dir, std::io::Error::other(e)))??;
        if !mounts.is_empty() || !container.file_binds.is_empty() {
            self.lock().rootfs.insert(id.clone(), rootfs_dir.to_owned());
        }
        let created = async {
            let mut spec = container.spec.clone();
            if !in_rootfs(&spec) {
                spec.module = self.layer_module(&id, &sandbox).await.ok_or_else(|| {
                    TaskError::ModuleNotFound {
                        id: id.clone(),
                        module: container.module_arg.clone(),
                        path: spec
                            .rootfs
                            .as_deref()
                            .unwrap_or(Path::new(""))
                            .join(&spec.module),
                    }
                })?;
            }
            for volume in &container.volumes {
                sandbox.add_volume(volume)?;
            }
            self.sinks.open(&id, stdio).await?;
            sandbox
                .create_container(
                    ContainerConfig::new(spec, 0).with_display_name(container.name.clone()),
                )
                .await?;
            if let Some(stdin) = container_stdin(&sandbox, &id, stdio).await? {
                sandbox.attach_stdin(&id, stdin)?;
            }
            Ok(())
        }
        .await;
        if created.is_err() {
            self.sinks.close(&id);
            self.unmount(&id);
        }
        created
    }

    fn start_container(&self, id: &str) -> Result<(), TaskError> {
        Ok(self.sandbox()?.start_container(id)?)
    }

    async fn wait_container(&self, id: &str) -> Result<ExitStatus, TaskError> {
        let exit = self.sandbox()?.wait_container(id).await;
        // The guest's last record went through the observer before its exit was set.
        self.sinks.close(id);
        Ok(exit?)
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), TaskError> {
        self.sandbox()?.stop_container(id, grace).await?;
        Ok(())
    }

    fn kill_container(&self, id: &str) -> Result<(), TaskError> {
        Ok(self.sandbox()?.kill_container(id)?)
    }

    fn update_container(
        &self,
        id: &str,
        memory_limit: Option<u64>,
        cpu_limit: Option<u64>,
    ) -> Result<(), TaskError> {
        Ok(self
            .sandbox()?
            .update_resources(id, memory_limit, cpu_limit)?)
    }

    fn remove_container(&self, id: &str) -> Result<(), TaskError> {
        self.sandbox()?.remove_container(id)?;
        self.sinks.close(id);
        self.unmount(id);
        Ok(())
    }

    async fn exec_in_container(
        &self,
        id: &str,
        argv: Vec<String>,
        stdio: &Stdio,
        kill: CancellationToken,
    ) -> Result<ExitStatus, TaskError> {
        let sandbox = self.sandbox()?;
        let (stdin, io) = exec_stdio(stdio, &kill).await?;
        let config = ExecConfig {
            argv,
            stdin,
            io,
            kill,
        };
        Ok(sandbox.exec(id, config).await?)
    }

    fn container_usage(&self, id: &str) -> Result<Usage, TaskError> {
        let status = self.sandbox()?.container_status(id)?;
        Ok(Usage {
            cpu: status.usage.cpu_time(),
            memory: status.usage.memory(),
            memory_peak: status.usage.memory_peak(),
        })
    }

    fn sandbox_usage(&self) -> Usage {
        let inner = self.lock();
        let Some(sandbox) = inner.sandbox.as_ref() else {
            return Usage::default();
        };
        let pod = sandbox.usage();
        let pod = inner.host.as_ref().map_or(pod, |host| host.usage(pod));
        Usage {
            cpu: pod.cpu_time,
            memory: pod.memory,
            memory_peak: pod.memory_peak,
        }
    }

    async fn delete_sandbox(&self) -> Result<(), TaskError> {
        let (sandbox, host, mounted) = {
            let mut inner = self.lock();
            let mounted: Vec<String> = inner.rootfs.keys().cloned().collect();
            (inner.sandbox.take(), inner.host.take(), mounted)
        };
        for id in mounted {
            self.unmount(&id);
        }
        let mut result = Ok(());
        if let Some(sandbox) = sandbox {
            result = sandbox.delete().await.map_err(TaskError::from);
        }
        if let Some(host) = host {
            // The host layer and the pod directory, with what the sandbox left in it.
            let undone = wasmpod::blocking::unblocked(move || host.teardown(true)).await;
            if let Some(error) = undone.error {
                tracing::warn!(%error, "cannot tear down the host layer");
                if result.is_ok() {
                    result = Err(TaskError::Runtime(error.into()));
                }
            }
        }
        result
    }
}

/// A container's stdin, when containerd gives it one (`stdin: true`). With a terminal
/// (`kubectl run -it`, `kubectl attach -it`) keystrokes are echoed to the stdout FIFO and
/// `^C` is what `SIGINT` is (`Kill`): the termination request.
async fn container_stdin(
    sandbox: &Sandbox,
    id: &str,
    stdio: &Stdio,
) -> Result<Option<Box<dyn StdinStream + Sync>>, TaskError> {
    if !stdio.terminal {
        return guest_stdin(stdio, None, &CancellationToken::new());
    }
    let echo = TerminalOutput::new(open_output(stdio.stdout.as_deref()).await?);
    let interrupt = CancellationToken::new();
    let stdin = guest_stdin(stdio, Some(&echo), &interrupt)?;
    if stdin.is_some() {
        let (sandbox, id) = (sandbox.clone(), id.to_owned());
        tokio::spawn(async move {
            tokio::select! {
                () = interrupt.cancelled() => {
                    if let Err(error) = sandbox.stop_container(&id, TERM_GRACE).await {
                        tracing::debug!(container = id, %error, "interrupt");
                    }
                }
                _ = sandbox.wait_container(&id) => {}
            }
        });
    }
    Ok(stdin)
}

/// An exec'd process's stdin and output. Its stdin FIFO is read as [`super::stdio::open_input`]
/// says (the process sees the end of its input when containerd closes it, on `CloseIO`). Its
/// stdout and stderr FIFOs are written synchronously, as containers' output is: a process
/// that writes faster than containerd reads is slowed down, and nothing written is lost when
/// it ends. With a terminal (`kubectl exec -t`, see [`super::tty`]) its stdin goes through
/// the line discipline, `^C` cancelling `kill`, and its stdout and stderr both go to the
/// stdout FIFO.
async fn exec_stdio(
    stdio: &Stdio,
    kill: &CancellationToken,
) -> Result<(Option<Box<dyn StdinStream + Sync>>, GuestIo), TaskError> {
    if stdio.terminal {
        let terminal = TerminalOutput::new(open_output(stdio.stdout.as_deref()).await?);
        let stdin = guest_stdin(stdio, Some(&terminal), kill)?;
        let io = GuestIo {
            stdout: Box::new(terminal.clone()),
            stderr: Box::new(terminal),
        };
        return Ok((stdin, io));
    }
    let stream = |fifo: Option<File>| -> Box<dyn StdoutStream + Sync> {
        match fifo {
            Some(fifo) => Box::new(OutputFile::new(fifo)),
            None => Box::new(tokio::io::empty()),
        }
    };
    let io = GuestIo {
        stdout: stream(open_output(stdio.stdout.as_deref()).await?),
        stderr: stream(open_output(stdio.stderr.as_deref()).await?),
    };
    Ok((guest_stdin(stdio, None, kill)?, io))
}
