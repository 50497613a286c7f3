//! The process that holds one pod: [`PodProcess::prepare`] (everything that can refuse the
//! pod, then the host layer) → [`PodProcess::run`] → [`PodProcess::teardown`].
//!
//! `wasmpod run` and the test harness are thin callers of this; what they choose is where the
//! pod's output goes ([`RunOptions::on_log`], [`RunOptions::logs`]) and what they do with its
//! final status. The shim, whose containers arrive one CRI call at a time (kubelet runs the
//! pod's life), holds the host side alone: a [`PodHost`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{RunOptions, Shutdown};
use crate::admission::{Admission, Node};
use crate::control::{ControlSocket, PodRecord};
use crate::engine::{Engine, Image};
use crate::error::{Error, Result};
use crate::host::{self, CgroupStats, HostConfig, HostError, HostLayer};
use crate::pod::{PodDir, PodUsage};
use crate::spec::PodSpec;
use crate::status::{PodStatus, ProcessUsage};

/// What a pod process is prepared with.
#[derive(Debug, Clone)]
pub struct Prepare {
    /// Where pod directories are kept: the pod's is [`PodDir::for_pod`] of it. What crashed
    /// pod processes left here is cleaned up first.
    pub state_dir: PathBuf,
    /// The node the pod must fit (its requests summed); `None` admits it without a check.
    /// Default: this machine.
    pub node: Option<Arc<Node>>,
    /// The pod's cgroup and network namespace; `None` runs it in this process's.
    /// Default: `None`.
    pub host: Option<HostConfig>,
}

impl Prepare {
    /// Pods kept under `state_dir`, admitted to this machine, without a host layer.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Prepare {
            state_dir: state_dir.into(),
            node: Some(Node::this_machine()),
            host: None,
        }
    }
}

/// The host side of the process holding one pod, whatever runs the pod's life: its
/// directory, its host layer (cgroup, network namespace) made and entered, the pod's usage as
/// the host sees it, and the teardown of both. (What crashed pod processes left is
/// [`host::recover`]'s: `PodProcess::prepare` calls it first; the shim, when containerd
/// deletes a dead shim's task.)
#[derive(Debug)]
pub struct PodHost {
    dir: PodDir,
    layer: Option<HostLayer>,
}

impl PodHost {
    /// The pod's host side in `dir`; with `host`, makes and enters its host layer
    /// (`(config, name)`: what to make, and the name of the host objects made for the pod,
    /// its cgroup and veth), recorded in `dir`. Call it before any runtime threads exist, so
    /// they are born in the pod's network namespace. All or nothing: on error the layer is
    /// undone and a directory this call made is removed. Blocking.
    pub fn establish(dir: PodDir, host: Option<(&HostConfig, &str)>) -> Result<Self, HostError> {
        let layer = host
            .map(|(config, name)| HostLayer::establish(config, name, &dir.host_record()))
            .transpose()?;
        Ok(PodHost { dir, layer })
    }

    /// The pod's directory.
    pub fn dir(&self) -> &PodDir {
        &self.dir
    }

    /// What the host layer could not enforce (a missing cgroup controller...), one line each.
    pub fn warnings(&self) -> &[String] {
        self.layer.as_ref().map_or(&[], |layer| layer.warnings())
    }

    /// The host layer, when the pod has one.
    pub fn layer(&self) -> Option<&HostLayer> {
        self.layer.as_ref()
    }

    /// The pod's usage: its sandbox's own figures (`sandbox`), where the pod's cgroup counts
    /// more (the whole process: runtime, compiled code, buffers) raised to the cgroup's.
    pub fn usage(&self, sandbox: PodUsage) -> PodUsage {
        let Some(stats) = self
            .layer
            .as_ref()
            .and_then(HostLayer::cgroup)
            .map(|c| c.stats())
        else {
            return sandbox;
        };
        let mut usage = sandbox;
        usage.cpu_time = usage.cpu_time.max(stats.cpu_usage);
        if let Some(current) = stats.memory_current {
            usage.memory = current;
            usage.memory_peak = usage.memory_peak.max(current);
        }
        usage
    }

    /// Undoes the host layer (reading its cgroup's figures first) and, with `remove_dir`,
    /// removes the pod directory. Every step runs. Blocking.
    pub fn teardown(mut self, remove_dir: bool) -> Teardown {
        let cgroup = self
            .layer
            .as_ref()
            .and_then(HostLayer::cgroup)
            .map(|c| c.stats());
        let error = self.layer.take().and_then(|layer| layer.destroy().err());
        if remove_dir
            && let Err(error) = crate::hostdir::remove_tree(self.dir.path())
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.path().display(), %error, "cannot remove the pod directory");
        }
        Teardown { cgroup, error }
    }
}

/// A pod admitted, its images loaded and its host layer made, ready to run.
#[derive(Debug)]
pub struct PodProcess {
    engine: Engine,
    spec: PodSpec,
    host: PodHost,
    recovered: Vec<PathBuf>,
    /// Every container's image, by container name: loaded once, here.
    images: HashMap<String, Image>,
    /// The pod's share of the node, given back when the process is dropped.
    _admission: Option<Admission>,
}

/// What [`PodProcess::teardown`] found and did.
#[derive(Debug)]
pub struct Teardown {
    /// What the pod's cgroup used, read just before it was removed.
    pub cgroup: Option<CgroupStats>,
    /// The host layer's teardown failed (every step was still tried).
    pub error: Option<HostError>,
}

/// A pod run to its end by [`PodProcess::run_to_end`].
#[derive(Debug)]
pub struct Finished {
    /// The final status, with the process's figures ([`PodStatus::process`]).
    pub status: PodStatus,
    /// The host layer's teardown failed (every step was still tried).
    pub host_error: Option<HostError>,
    /// The pod directory (logs), unless it was removed.
    pub dir: Option<PodDir>,
}

impl PodProcess {
    /// Everything that can refuse the pod happens first, before anything is made: admission
    /// to the node, then every container's image (an error names its `image` field). Then
    /// what crashed pods left in the state directory is cleaned up, and the host layer is
    /// made and entered: call this before any runtime threads exist, so they are born in the
    /// pod's network namespace. Blocking (images compile on a cache miss).
    #[tracing::instrument(skip_all, fields(pod = %spec.name))]
    pub fn prepare(engine: &Engine, spec: PodSpec, prepare: Prepare) -> Result<Self> {
        let admission = prepare.node.as_ref().map(|n| n.admit(&spec)).transpose()?;
        let images = load_images(engine, &spec)?;
        let dir = PodDir::for_pod(&prepare.state_dir, &spec);
        let name = dir.name();
        let recovered = host::recover(&prepare.state_dir);
        let host = PodHost::establish(
            dir,
            prepare.host.as_ref().map(|config| (config, name.as_str())),
        )?;
        Ok(PodProcess {
            engine: engine.clone(),
            spec,
            host,
            recovered,
            images,
            _admission: admission,
        })
    }

    /// The pod.
    pub fn spec(&self) -> &PodSpec {
        &self.spec
    }

    /// The pod's directory.
    pub fn dir(&self) -> &PodDir {
        self.host.dir()
    }

    /// The pod directories of crashed pod processes that [`PodProcess::prepare`] cleaned up.
    pub fn recovered(&self) -> &[PathBuf] {
        &self.recovered
    }

    /// What the host layer could not enforce (a missing cgroup controller...), one line each;
    /// each is also a condition of the pod's status.
    pub fn warnings(&self) -> &[String] {
        self.host.warnings()
    }

    /// Runs the pod to its end (see [`crate::runner`]) and returns its final status. The
    /// sandbox is deleted before this returns, whatever happened; the directory keeps the
    /// logs until [`PodProcess::teardown`].
    pub async fn run(&self, options: RunOptions, shutdown: Shutdown) -> Result<PodStatus> {
        let warnings = self.warnings().to_vec();
        super::run_pod(
            &self.engine,
            &self.spec,
            self.host.dir(),
            &self.images,
            &warnings,
            options,
            shutdown,
        )
        .await
    }

    /// Undoes the host layer (reading its cgroup's figures first) and, with `remove_dir`,
    /// removes the pod directory. Every step runs.
    #[tracing::instrument(skip_all, fields(pod = %self.spec.name))]
    pub fn teardown(self, remove_dir: bool) -> Teardown {
        self.host.teardown(remove_dir)
    }

    /// The whole life of a process that holds only this pod: a tokio runtime of its own,
    /// [`PodProcess::run`], then [`PodProcess::teardown`] whatever happened. With
    /// `options.follow_signals`, the first SIGINT or SIGTERM terminates the pod gracefully and
    /// the next kills it. Other processes manage it through [`crate::control`]: its record is
    /// kept in the pod directory from before it starts to after it ended, and its control
    /// socket serves while it runs.
    pub fn run_to_end(
        self,
        mut options: RunOptions,
        shutdown: Shutdown,
        remove_dir: bool,
    ) -> Result<Finished> {
        let dir = self.host.dir().clone();
        let created = jiff::Timestamp::now();
        let initial = PodStatus::new(&self.spec).with_warnings(self.warnings());
        let control = std::fs::create_dir_all(dir.path())
            .and_then(|()| PodRecord::new(&self.spec, created, &initial, false).write(&dir))
            .and_then(|()| ControlSocket::bind(&dir))
            .map_err(|e| Error::io("publish the pod", dir.control_socket(), e))?;
        // Every status change is recorded, the latest first, by a task of its own.
        let (changed, mut latest) = tokio::sync::watch::channel(initial);
        let observer = options.on_status.take();
        options.on_status = Some(Arc::new(move |status: &PodStatus| {
            if let Some(observer) = &observer {
                observer(status);
            }
            changed.send_replace(status.clone());
        }));
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| Error::io("start tokio runtime", dir.path(), e))?;
        let result = runtime.block_on(async {
            if options.follow_signals {
                tokio::spawn(stop_on_signals(shutdown.clone()));
            }
            if let Err(error) = control.serve(shutdown.clone()) {
                tracing::warn!(%error, "cannot serve the control socket");
            }
            let spec = self.spec.clone();
            let record_dir = dir.clone();
            tokio::spawn(async move {
                while latest.changed().await.is_ok() {
                    let record = PodRecord::new(&spec, created, &latest.borrow_and_update(), false);
                    let dir = record_dir.clone();
                    let written = crate::blocking::unblocked(move || record.write(&dir)).await;
                    if let Err(error) = written {
                        tracing::warn!(%error, "cannot record the pod's status");
                    }
                }
            });
            self.run(options, shutdown).await
        });
        drop(runtime);
        let kept = (!remove_dir).then(|| dir.clone());
        let spec = self.spec.clone();
        let teardown = self.teardown(remove_dir);
        let mut status = match result {
            Ok(status) => status,
            Err(error) => {
                if let Some(host_error) = teardown.error {
                    tracing::warn!(error = %host_error, "host layer teardown");
                }
                // The record says the pod ended, failed.
                let mut failed = PodStatus::new(&spec);
                failed.phase = crate::status::Phase::Failed;
                failed.reason = Some("Error".into());
                failed.message = Some(error.to_string());
                control.close(&spec, created, &failed, remove_dir);
                return Err(error);
            }
        };
        status.process = Some(ProcessUsage {
            peak_rss: peak_rss(),
            cgroup: teardown.cgroup,
        });
        control.close(&spec, created, &status, remove_dir);
        Ok(Finished {
            status,
            host_error: teardown.error,
            dir: kept.filter(|d| d.path().exists()),
        })
    }
}

/// Loads every container's image, so that a missing or invalid module fails before anything
/// is created; the error names the container's `image` field. Blocking: compiling happens
/// here on a cache miss.
fn load_images(engine: &Engine, spec: &PodSpec) -> Result<HashMap<String, Image>> {
    let init = spec
        .init_containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.initContainers[{i}].image"), c));
    let app = (spec.containers.iter().enumerate())
        .map(|(i, c)| (format!("spec.containers[{i}].image"), c));
    init.chain(app)
        .map(|(field, container)| {
            let image = engine
                .load_image(&container.module)
                .map_err(|image| Error::ImageOf { field, image })?;
            Ok((container.name.clone(), image))
        })
        .collect()
}

/// The first SIGINT or SIGTERM terminates the pod gracefully; the next one kills it.
async fn stop_on_signals(shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers: Ctrl-C will not stop the pod gracefully");
        return;
    };
    let mut next = async || {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    next().await;
    tracing::warn!("terminating the pod (again to kill it now)");
    shutdown.terminate();
    next().await;
    tracing::warn!("killing the pod");
    shutdown.kill();
}

/// This process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string(Path::new("/proc/self/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Quantities;

    fn spec(dir: &Path, memory_request: &str) -> PodSpec {
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: ok\n    image: missing.wasm\n    resources: {{requests: {{memory: {memory_request}}}}}\n"
        );
        crate::spec::parse_pod(&manifest, dir).expect("manifest")
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    #[test]
    fn a_missing_image_refuses_the_pod_before_anything_is_made() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::new(crate::EngineConfig::default()).expect("engine");
        let node = Node::new(Quantities {
            memory: 1 << 30,
            cpu_millis: 1000,
        });
        let mut prepare = Prepare::new(dir.path().join("state"));
        prepare.node = Some(node.clone());
        let error = PodProcess::prepare(&engine, spec(dir.path(), "512Mi"), prepare)
            .expect_err("the module is missing");
        assert!(
            error.to_string().contains("spec.containers[0].image"),
            "{error}"
        );
        assert_eq!(entries(&dir.path().join("state")), 0);
        // The refused pod gave its share of the node back: 768Mi of 1Gi still fits.
        node.admit(&spec(dir.path(), "768Mi"))
            .expect("the node is free again");
    }

    #[test]
    fn a_pod_too_big_for_the_node_is_refused_before_its_images_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::new(crate::EngineConfig::default()).expect("engine");
        let mut prepare = Prepare::new(dir.path().join("state"));
        prepare.node = Some(Node::new(Quantities {
            memory: 1 << 20,
            cpu_millis: 1000,
        }));
        let error = PodProcess::prepare(&engine, spec(dir.path(), "512Mi"), prepare)
            .expect_err("does not fit");
        assert_eq!(error.kind(), crate::ErrorKind::ResourceExhausted, "{error}");
        assert_eq!(entries(&dir.path().join("state")), 0);
    }
}
