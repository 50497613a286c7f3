//! wasmpod's side: a parsed pod started through the public sandbox API until every container is
//! running, timed step by step.
//!
//! A container counts as *running* when its guest's first output record reaches the sandbox's
//! `log_observer`: the guest was instantiated and has executed its own code up to a write that
//! went through wasmpod's log capture (the CRI log file) to the observer. The start is measured
//! up to the moment the last container's first record arrives there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use tokio::sync::mpsc;
use wasmpod::engine::CacheStats;
use wasmpod::{ContainerConfig, Engine, EngineConfig, PodSpec, Sandbox, SandboxConfig};

use crate::FIRST_OUTPUT_DEADLINE;

/// Where the engine comes from for one start.
#[derive(Debug)]
pub enum EngineSource<'a> {
    /// An engine that already loaded the images (warm, in process): not timed.
    Warm(&'a Engine),
    /// A fresh engine built from this config inside the timed region: a new process's first
    /// pod, with an empty (cold) or populated (disk-warm) cache.
    Fresh(EngineConfig),
}

/// How the containers are created and started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `create_container` a, `create_container` b, `start_container` a, `start_container` b,
    /// each awaited before the next: the per-step timings are meaningful.
    Sequential,
    /// Each container's create + start on its own task, as `wasmpod::runner` starts a pod's
    /// app containers.
    Concurrent,
}

/// The timings of one start. In [`Order::Concurrent`], `create` holds the time both containers
/// took to be created and started, and `start` is empty.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    /// `Engine::new`, for a fresh engine.
    pub engine: Option<Duration>,
    /// Loading every container's image up front, as a pod process does before it starts the
    /// pod (`PodProcess::prepare`); `create_container` then gets each image with its config.
    pub images: Duration,
    /// `Sandbox::create`.
    pub sandbox: Duration,
    /// Each `create_container`, in container order.
    pub create: Vec<Duration>,
    /// Each `start_container`, in container order.
    pub start: Vec<Duration>,
    /// From the last `start_container` returning to the last first output.
    pub output: Duration,
    /// The whole start: from the parsed spec to every container running.
    pub total: Duration,
    /// What a fresh engine's compile cache did during the start.
    pub cache: Option<CacheStats>,
}

/// Starts one pod spec again and again, each time as a new pod directory under `root`.
#[derive(Debug)]
pub struct PodStarter {
    spec: PodSpec,
    names: Arc<[String]>,
    root: PathBuf,
    next: std::sync::atomic::AtomicU64,
}

impl PodStarter {
    /// Starts `spec` with pod directories under `root`.
    pub fn new(spec: PodSpec, root: &Path) -> Self {
        let names = spec.containers.iter().map(|c| c.name.clone()).collect();
        PodStarter {
            spec,
            names,
            root: root.to_owned(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The spec.
    pub fn spec(&self) -> &PodSpec {
        &self.spec
    }

    /// Starts the pod until every container is running and returns the timings; then waits for
    /// the guests to end, checks they succeeded and deletes the sandbox and its directory (not
    /// timed).
    pub async fn start_once(&self, source: EngineSource<'_>, order: Order) -> Result<Steps> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.root.join(format!("pod-{n}"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let names = self.names.clone();
        let observer: wasmpod::pod::PodLogObserver = Arc::new(move |name, _stream, _line, _| {
            if let Some(i) = names.iter().position(|n| n == name) {
                // The receiver is gone only once the measurement is over.
                let _ = tx.send((i, Instant::now()));
            }
        });
        let mut steps = Steps::default();

        let began = Instant::now();
        let fresh;
        let engine = match source {
            EngineSource::Warm(engine) => engine,
            EngineSource::Fresh(config) => {
                fresh = Engine::new(config).context("engine")?;
                steps.engine = Some(began.elapsed());
                &fresh
            }
        };
        let mut mark = Instant::now();
        let mut lap = || {
            let now = Instant::now();
            let step = now - mark;
            mark = now;
            step
        };

        let images = {
            let engine = engine.clone();
            let modules: Vec<_> = self
                .spec
                .containers
                .iter()
                .map(|c| c.module.clone())
                .collect();
            // Off the async threads' duty as the harness loads them (`PodProcess::prepare`).
            wasmpod::blocking::unblocked(move || {
                modules
                    .iter()
                    .map(|module| engine.load_image(module))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
        };
        steps.images = lap();

        let mut config = SandboxConfig::for_pod(&self.spec, dir.clone());
        config.log_observer = Some(observer);
        let sandbox = Sandbox::create(engine, config).await.context("sandbox")?;
        steps.sandbox = lap();
        match order {
            Order::Sequential => {
                for (container, image) in self.spec.containers.iter().zip(&images) {
                    let config =
                        ContainerConfig::new(container.clone(), 0).with_image(Some(image.clone()));
                    sandbox.create_container(config).await.context("create")?;
                    steps.create.push(lap());
                }
                for container in &self.spec.containers {
                    sandbox.start_container(&container.name).context("start")?;
                    steps.start.push(lap());
                }
            }
            Order::Concurrent => {
                let tasks: Vec<_> = (self.spec.containers.iter().zip(&images))
                    .map(|(container, image)| {
                        let sandbox = sandbox.clone();
                        let config = ContainerConfig::new(container.clone(), 0)
                            .with_image(Some(image.clone()));
                        tokio::spawn(async move {
                            let name = config.spec.name.clone();
                            sandbox.create_container(config).await.context("create")?;
                            sandbox.start_container(&name).context("start")
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.context("join")??;
                }
                steps.create.push(lap());
            }
        }
        let last_start = mark;

        let mut first = vec![None; self.names.len()];
        while first.iter().any(Option::is_none) {
            let (i, at) = tokio::time::timeout(FIRST_OUTPUT_DEADLINE, rx.recv())
                .await
                .with_context(|| format!("no output from {first:?} before the deadline"))?
                .context("log observer dropped")?;
            first[i].get_or_insert(at);
        }
        let running = first.into_iter().flatten().max().unwrap_or(last_start);
        steps.output = running.saturating_duration_since(last_start);
        steps.total = running - began;

        for name in self.names.iter() {
            let exit = tokio::time::timeout(FIRST_OUTPUT_DEADLINE, sandbox.wait_container(name))
                .await
                .with_context(|| format!("{name} did not end before the deadline"))??;
            ensure!(exit.success(), "{name} failed: {exit:?}");
        }
        sandbox.delete().await.context("delete")?;
        if steps.engine.is_some() {
            steps.cache = Some(engine.cache().stats());
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        Ok(steps)
    }
}
