//! Runs a whole manifest on the sandbox API, as `wasmpod run` does, in a [`PodProcess`]:
//! images loaded first (a bad image starts nothing), then the sandbox, init containers one at a time (each to success),
//! then the app containers together, each restarted as `restartPolicy` says with Kubernetes'
//! back-off, until the pod ends, its `activeDeadlineSeconds` passes, or `shutdown` fires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

mod backoff;
mod eviction;
mod process;

pub use backoff::Backoff;
use eviction::evict_on_size_limits;
pub use process::{Finished, PodHost, PodProcess, Prepare, Teardown};

use crate::engine::{Engine, ExitStatus, Image};
use crate::error::Result;
use crate::logs::LogSink;
use crate::pod::{ContainerConfig, PodDir, PodLogObserver, Sandbox, SandboxConfig};
use crate::spec::{ContainerSpec, PodSpec, RestartPolicy};
use crate::status::{ContainerRecord, Phase, PodStatus, State};

/// Sees the pod's status after every change.
pub type StatusObserver = Arc<dyn Fn(&PodStatus) + Send + Sync>;

/// Sees the pod's network once its sandbox exists (the test harness reaches the pod's
/// services through it).
pub type NetworkObserver = Arc<dyn Fn(&crate::net::Network) + Send + Sync>;

/// How a pod is run.
#[derive(Clone)]
pub struct RunOptions {
    /// The first restart delay; it doubles up to 30× (5 min for Kubernetes' 10 s) and is reset
    /// after a container ran 60× as long (10 min) without failing. Default: 10 s.
    pub backoff_base: Duration,
    /// Sees every status change.
    pub on_status: Option<StatusObserver>,
    /// Sees every guest output record.
    pub on_log: Option<PodLogObserver>,
    /// Where guests' output is kept. Default: CRI log files in the pod directory, rotated as
    /// kubelet rotates them (`wasmpod logs` reads them).
    pub logs: LogSink,
    /// Sees the pod's network, before any container starts.
    pub on_network: Option<NetworkObserver>,
    /// Overrides the manifest's `terminationGracePeriodSeconds`.
    pub grace_period: Option<Duration>,
    /// Keep the emptyDirs after the pod ended (the test harness reads them). Default: false.
    pub retain_volumes: bool,
    /// How often emptyDirs with a `sizeLimit` are measured. Default: 1 s.
    pub eviction_interval: Duration,
    /// The pod's network (policy: may guests reach beyond the pod). Default:
    /// [`NetworkConfig::default`](crate::net::NetworkConfig::default), outbound allowed.
    pub network: crate::net::NetworkConfig,
    /// [`PodProcess::run_to_end`] only: the first SIGINT or SIGTERM terminates the pod, the
    /// next kills it. Default: false.
    pub follow_signals: bool,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("backoff_base", &self.backoff_base)
            .field("grace_period", &self.grace_period)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    /// Kubernetes' defaults.
    fn default() -> Self {
        RunOptions {
            backoff_base: Duration::from_secs(10),
            on_status: None,
            on_log: None,
            logs: LogSink::default(),
            on_network: None,
            grace_period: None,
            retain_volumes: false,
            eviction_interval: Duration::from_secs(1),
            network: crate::net::NetworkConfig::default(),
            follow_signals: false,
        }
    }
}

/// Where pod directories go by default: `/run/wasmpod` as root, else
/// `$XDG_RUNTIME_DIR/wasmpod`, else a per-user directory under the temp dir.
pub fn default_state_dir() -> PathBuf {
    if std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        return PathBuf::from("/run/wasmpod");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("wasmpod"),
        None => std::env::temp_dir().join(format!(
            "wasmpod-{}",
            std::env::var("USER").unwrap_or_else(|_| "user".into())
        )),
    }
}

/// How a running pod is ended from outside: [`Shutdown::terminate`] asks every container to
/// stop within the grace period (preStop, termination request, hard stop at the end);
/// [`Shutdown::kill`] hard-stops them at once. Cheap to clone; clones are the same switch.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    terminate: CancellationToken,
    kill: CancellationToken,
}

impl Shutdown {
    /// A switch nobody pulled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Graceful termination (Ctrl-C, SIGTERM, a deadline).
    pub fn terminate(&self) {
        self.terminate.cancel();
    }

    /// Immediate hard stop of everything still running (a second Ctrl-C).
    pub fn kill(&self) {
        self.terminate.cancel();
        self.kill.cancel();
    }

    /// Whether termination was asked for.
    pub fn is_terminating(&self) -> bool {
        self.terminate.is_cancelled()
    }

    fn child(&self) -> Shutdown {
        Shutdown {
            terminate: self.terminate.child_token(),
            kill: self.kill.child_token(),
        }
    }
}

/// Runs the pod to its end and returns its final status. The sandbox is deleted before this
/// returns, whatever happened; the pod directory keeps the logs.
async fn run_pod(
    engine: &Engine,
    spec: &PodSpec,
    dir: &PodDir,
    images: &HashMap<String, Image>,
    warnings: &[String],
    options: RunOptions,
    shutdown: Shutdown,
) -> Result<PodStatus> {
    let mut config = SandboxConfig::for_pod(spec, dir.path().to_owned());
    config.log_observer = options.on_log.clone();
    config.logs = options.logs.clone();
    config.retain_volumes = options.retain_volumes;
    config.network = options.network.clone();
    let sandbox = Sandbox::create(engine, config).await?;
    if let Some(observer) = &options.on_network {
        observer(sandbox.network());
    }
    let pod = Arc::new(Pod {
        sandbox: sandbox.clone(),
        restart_policy: spec.restart_policy,
        backoff_base: options.backoff_base,
        status: Mutex::new(PodStatus::new(spec).with_warnings(warnings)),
        images: images.clone(),
        on_status: options.on_status,
        grace: options
            .grace_period
            .unwrap_or(spec.termination_grace_period),
        shutdown: shutdown.child(),
    });
    pod.notify();
    let deadline = spec.active_deadline.map(|after| {
        let pod = pod.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let message = format!(
                "Pod was active on the node longer than the specified deadline ({}s)",
                after.as_secs()
            );
            pod.end("DeadlineExceeded", message);
            pod.shutdown.terminate();
        })
    });
    let eviction = tokio::spawn(evict_on_size_limits(
        pod.clone(),
        spec.volumes.clone(),
        options.eviction_interval,
    ));
    let phase = pod.drive(spec).await;
    eviction.abort();
    if let Some(deadline) = deadline {
        deadline.abort();
    }
    let deleted = sandbox.delete().await;
    pod.update(|s| {
        s.phase = if s.reason.is_some() {
            Phase::Failed
        } else {
            phase
        }
    });
    deleted?;
    Ok(pod.snapshot())
}

struct Pod {
    sandbox: Sandbox,
    /// Every container's image, loaded before the pod started.
    images: HashMap<String, Image>,
    restart_policy: RestartPolicy,
    backoff_base: Duration,
    status: Mutex<PodStatus>,
    on_status: Option<StatusObserver>,
    /// The grace period of graceful termination.
    grace: Duration,
    /// Pulled on shutdown or deadline: every container is stopped and none restarted.
    shutdown: Shutdown,
}

/// Which status slot a container fills.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Init(usize),
    App(usize),
}

impl Pod {
    /// Init containers in order, then app containers together; the phase they end in.
    async fn drive(self: &Arc<Self>, spec: &PodSpec) -> Phase {
        for (i, container) in spec.init_containers.iter().enumerate() {
            if !self.run_container(Slot::Init(i), container).await.success() {
                return Phase::Failed;
            }
        }
        self.update(|s| s.phase = Phase::Running);
        let tasks: Vec<_> = spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, container)| {
                let pod = self.clone();
                let container = container.clone();
                tokio::spawn(async move { pod.run_container(Slot::App(i), &container).await })
            })
            .collect();
        let mut succeeded = true;
        for task in tasks {
            succeeded &= task.await.is_ok_and(|exit| exit.success());
        }
        if succeeded {
            Phase::Succeeded
        } else {
            Phase::Failed
        }
    }

    /// Runs one container until it ends for good under the restart policy; its last exit.
    async fn run_container(&self, slot: Slot, spec: &ContainerSpec) -> ExitStatus {
        let mut backoff = Backoff::new(self.backoff_base);
        let mut attempt = 0;
        loop {
            let began = Instant::now();
            let (exit, started_at) = self.run_once(slot, spec, attempt).await;
            let terminated = State::Terminated {
                exit: exit.clone(),
                started_at,
                finished_at: Timestamp::now(),
            };
            let restart = match slot {
                Slot::Init(_) => !exit.success() && self.restart_policy != RestartPolicy::Never,
                Slot::App(_) => self.restart_policy.restarts(exit.code),
            };
            if !restart || self.shutdown.is_terminating() {
                self.set_state(slot, terminated, None);
                return exit;
            }
            attempt += 1;
            let delay = backoff.next(began.elapsed());
            tracing::info!(container = spec.name, exit = exit.code, delay = ?delay, "back-off restarting failed container");
            let waiting = State::Waiting {
                reason: "CrashLoopBackOff".into(),
            };
            self.set_state(slot, waiting, Some((terminated, attempt)));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.terminate.cancelled() => return exit,
            }
        }
    }

    /// One run: create, start, wait (killing on stop), remove; how it ended and when it
    /// started. Setup failures are the container's `StartError`, never the pod's crash.
    async fn run_once(
        &self,
        slot: Slot,
        spec: &ContainerSpec,
        attempt: u32,
    ) -> (ExitStatus, Timestamp) {
        let name = spec.name.as_str();
        let config =
            ContainerConfig::new(spec.clone(), attempt).with_image(self.images.get(name).cloned());
        let started_at = Timestamp::now();
        if let Err(e) = self.sandbox.create_container(config).await {
            return (ExitStatus::start_error(e.to_string()), started_at);
        }
        let exit = match self.sandbox.start_container(name) {
            Ok(()) => {
                self.set_state(slot, State::Running { started_at }, None);
                tokio::select! {
                    exit = self.sandbox.wait_container(name) => exit,
                    () = self.shutdown.terminate.cancelled() => self.stop(name).await,
                }
                .unwrap_or_else(|e| ExitStatus::start_error(e.to_string()))
            }
            Err(e) => ExitStatus::start_error(e.to_string()),
        };
        match self.sandbox.remove_container(name) {
            Ok(removed) => {
                let cpu_time = removed.usage.cpu_time();
                let memory_peak = removed.usage.memory_peak();
                self.update_record(slot, |record| {
                    record.cpu_time = cpu_time;
                    record.memory_peak = memory_peak;
                });
            }
            Err(error) => tracing::warn!(container = name, %error, "cannot remove container"),
        }
        (exit, started_at)
    }

    /// Graceful stop of a running container, cut short by [`Shutdown::kill`].
    async fn stop(&self, name: &str) -> Result<ExitStatus> {
        let stopped = tokio::select! {
            stopped = self.sandbox.stop_container(name, self.grace) => stopped?,
            () = self.shutdown.kill.cancelled() => {
                self.sandbox.kill_container(name)?;
                Some(self.sandbox.wait_container(name).await?)
            }
        };
        Ok(stopped.unwrap_or_else(|| ExitStatus::killed("stopped before it started")))
    }

    /// Sets a container's state; with `restarted`, also its last state and restart count.
    fn set_state(&self, slot: Slot, state: State, restarted: Option<(State, u32)>) {
        self.update_record(slot, |record| {
            record.state = state;
            if let Some((last, restart_count)) = restarted {
                record.last_state = Some(last);
                record.restart_count = restart_count;
            }
        });
    }

    fn update_record(&self, slot: Slot, change: impl FnOnce(&mut ContainerRecord)) {
        self.update(|s| {
            change(match slot {
                Slot::Init(i) => &mut s.init_containers[i],
                Slot::App(i) => &mut s.containers[i],
            })
        });
    }

    /// Records why the pod ends, unless an earlier reason was recorded.
    fn end(&self, reason: &str, message: String) {
        self.update(|s| {
            if s.reason.is_none() {
                s.reason = Some(reason.to_owned());
                s.message = Some(message);
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut PodStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
        self.notify();
    }

    fn notify(&self) {
        if let Some(observer) = &self.on_status {
            observer(&self.snapshot());
        }
    }

    fn snapshot(&self) -> PodStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
