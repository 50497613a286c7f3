//! Runs a whole manifest on the sandbox API, as `wasmpod run` does, in a [`PodProcess`]:
//! images loaded first (a bad image starts nothing), then the sandbox, init containers one at a time (each to success),
//! then the app containers together, each restarted as `restartPolicy` says with Kubernetes'
//! back-off, until the pod ends, its `activeDeadlineSeconds` passes, or `shutdown` fires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod backoff;
mod eviction;
mod probe;
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

/// Sees the pod's sandbox once it exists, before any container starts (the test harness
/// reaches the pod's services and execs into its containers through it).
pub type SandboxObserver = Arc<dyn Fn(&Sandbox) + Send + Sync>;

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
    /// Sees the pod's sandbox, before any container starts.
    pub on_sandbox: Option<SandboxObserver>,
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
            on_sandbox: None,
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
    if let Some(observer) = &options.on_sandbox {
        observer(&sandbox);
    }
    let pod = Arc::new(Pod {
        sandbox: sandbox.clone(),
        restart_policy: spec.restart_policy,
        backoff_base: options.backoff_base,
        status: Mutex::new(PodStatus::new(spec).with_warnings(warnings)),
        init_started: spec.init_containers.iter().map(|_| Notify::new()).collect(),
        images: images.clone(),
        on_status: options.on_status,
        grace: options
            .grace_period
            .unwrap_or(spec.termination_grace_period),
        shutdown: shutdown.child(),
        terminating_since: OnceLock::new(),
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
    /// Fired each time init container `i` is started (the runner waits on a sidecar's).
    init_started: Vec<Notify>,
    /// When the first container was stopped for the pod's termination.
    terminating_since: OnceLock<Instant>,
}

/// The least grace period a container stopped late in the pod's termination gets (kubelet's
/// `minimumGracePeriodInSeconds`).
const MIN_GRACE: Duration = Duration::from_secs(2);

/// Which status slot a container fills.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Init(usize),
    App(usize),
}

impl Pod {
    /// Init containers in order (a sidecar started and left running: the next one waits
    /// until it is started), then app containers together; once they ended, the sidecars
    /// are stopped in reverse order. The phase the app containers end in.
    async fn drive(self: &Arc<Self>, spec: &PodSpec) -> Phase {
        let mut sidecars = Vec::new();
        let mut initialized = true;
        for (i, container) in spec.init_containers.iter().enumerate() {
            if container.sidecar {
                let stop = CancellationToken::new();
                let task = self.spawn_container(Slot::Init(i), container, stop.clone());
                sidecars.push((stop, task));
                if !self.until_started(i).await {
                    initialized = false;
                    break;
                }
            } else if !(self.run_container(Slot::Init(i), container, &self.shutdown.terminate))
                .await
                .success()
            {
                initialized = false;
                break;
            }
        }
        let mut succeeded = initialized;
        if initialized {
            self.update(|s| s.phase = Phase::Running);
            let tasks: Vec<_> = (spec.containers.iter().enumerate())
                .map(|(i, container)| {
                    let stop = self.shutdown.terminate.clone();
                    self.spawn_container(Slot::App(i), container, stop)
                })
                .collect();
            for task in tasks {
                succeeded &= task.await.is_ok_and(|exit| exit.success());
            }
        }
        for (stop, task) in sidecars.into_iter().rev() {
            stop.cancel();
            let _ = task.await;
        }
        if succeeded {
            Phase::Succeeded
        } else {
            Phase::Failed
        }
    }

    /// [`Pod::run_container`] on a task of its own.
    fn spawn_container(
        self: &Arc<Self>,
        slot: Slot,
        container: &ContainerSpec,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<ExitStatus> {
        let pod = self.clone();
        let container = container.clone();
        tokio::spawn(async move { pod.run_container(slot, &container, &stop).await })
    }

    /// Waits until sidecar `i` is started (its postStart hook and startup probe passed);
    /// false when the pod is terminated first.
    async fn until_started(&self, i: usize) -> bool {
        let Some(started) = self.init_started.get(i) else {
            return false;
        };
        tokio::select! {
            () = started.notified() => true,
            () = self.shutdown.terminate.cancelled() => false,
        }
    }

    /// Runs one container until it ends for good under the restart policy (a sidecar's is
    /// `Always`) or `stop` fires (then it is stopped within the grace period and not
    /// restarted); its last exit.
    async fn run_container(
        &self,
        slot: Slot,
        spec: &ContainerSpec,
        stop: &CancellationToken,
    ) -> ExitStatus {
        let mut backoff = Backoff::new(self.backoff_base);
        let mut attempt = 0;
        loop {
            let began = Instant::now();
            let (exit, started_at, killed) = self.run_once(slot, spec, attempt, stop).await;
            let terminated = State::Terminated {
                exit: exit.clone(),
                started_at,
                finished_at: Timestamp::now(),
            };
            let restart = match slot {
                _ if spec.sidecar => true,
                Slot::Init(_) => !exit.success() && self.restart_policy != RestartPolicy::Never,
                // A container killed for a failed probe or hook is restarted whatever its exit
                // (as kubelet does), unless the pod never restarts.
                Slot::App(_) if killed => self.restart_policy != RestartPolicy::Never,
                Slot::App(_) => self.restart_policy.restarts(exit.code),
            };
            if !restart || stop.is_cancelled() {
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
                () = stop.cancelled() => return exit,
            }
        }
    }

    /// One run: create, start, postStart hook and probes, wait (stopping it when `stop`
    /// fires or its hook or a startup or liveness probe failed), remove; how it ended, when it
    /// started and whether it was killed for a failed hook or probe. Setup failures are the
    /// container's `StartError`, never the pod's crash.
    async fn run_once(
        &self,
        slot: Slot,
        spec: &ContainerSpec,
        attempt: u32,
        stop: &CancellationToken,
    ) -> (ExitStatus, Timestamp, bool) {
        let name = spec.name.as_str();
        let config =
            ContainerConfig::new(spec.clone(), attempt).with_image(self.images.get(name).cloned());
        let started_at = Timestamp::now();
        if let Err(e) = self.sandbox.create_container(config).await {
            return (ExitStatus::start_error(e.to_string()), started_at, false);
        }
        let mut killed = false;
        let exit = match self.sandbox.start_container(name) {
            Ok(()) => {
                self.update_record(slot, |record| record.state = State::Running { started_at });
                if spec.post_start.is_none() && spec.probes.startup.is_none() {
                    self.mark_started(slot, spec);
                }
                tokio::select! {
                    exit = self.sandbox.wait_container(name) => exit,
                    () = stop.cancelled() => self.stop(name, self.grace_left()).await,
                    failed = self.supervise(slot, spec) => {
                        tracing::info!(
                            container = name,
                            check = failed.check,
                            message = failed.message,
                            "container failed its {}, will be restarted",
                            failed.check
                        );
                        killed = true;
                        self.update_record(slot, |record| record.ready = false);
                        self.stop(name, failed.grace.unwrap_or(self.grace)).await
                    }
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
        (exit, started_at, killed)
    }

    /// Runs a started container's postStart hook, then its startup probe to its first
    /// success (then the container is started), then its liveness and readiness probes side
    /// by side, the readiness probe setting whether it is ready. Returns only when the hook,
    /// the startup or the liveness probe failed.
    async fn supervise(&self, slot: Slot, spec: &ContainerSpec) -> probe::Failed {
        let (name, probes) = (spec.name.as_str(), &spec.probes);
        if let Some(hook) = &spec.post_start
            && let Err(message) = self.sandbox.run_handler(name, hook, None).await
        {
            tracing::warn!(container = name, message, "FailedPostStartHook");
            return probe::Failed {
                check: "postStart hook",
                message,
                grace: None,
            };
        }
        if let Some(startup) = &probes.startup
            && let Err(failed) =
                probe::until_failed(&self.sandbox, name, startup, "startup probe", true).await
        {
            return failed;
        }
        self.mark_started(slot, spec);
        let liveness = async {
            if let Some(liveness) = &probes.liveness
                && let Err(failed) =
                    probe::until_failed(&self.sandbox, name, liveness, "liveness probe", false)
                        .await
            {
                return failed;
            }
            std::future::pending().await
        };
        // Runs for as long as it is polled.
        let readiness = async {
            match &probes.readiness {
                Some(readiness) => {
                    probe::readiness(&self.sandbox, name, readiness, |ready| {
                        self.update_record(slot, |record| record.ready = ready);
                    })
                    .await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            failed = liveness => failed,
            never = readiness => match never {},
        }
    }

    /// Records that a running container is started (its postStart hook and startup probe,
    /// if any, passed): ready too when it has no readiness probe. A sidecar's start lets the
    /// next init container go.
    fn mark_started(&self, slot: Slot, spec: &ContainerSpec) {
        self.update_record(slot, |record| {
            record.started = true;
            record.ready = spec.probes.readiness.is_none();
        });
        if let Slot::Init(i) = slot
            && let Some(started) = self.init_started.get(i)
        {
            started.notify_one();
        }
    }

    /// The grace period of a container stopped now: the pod's, less what its termination
    /// took so far (sidecars are stopped after the app containers), at least 2 s (as
    /// kubelet's minimum) unless the pod's is shorter.
    fn grace_left(&self) -> Duration {
        if !self.shutdown.is_terminating() {
            return self.grace;
        }
        let since = *self.terminating_since.get_or_init(Instant::now);
        (self.grace.saturating_sub(since.elapsed())).max(MIN_GRACE.min(self.grace))
    }

    /// Graceful stop of a running container within `grace`, cut short by [`Shutdown::kill`].
    async fn stop(&self, name: &str, grace: Duration) -> Result<ExitStatus> {
        let stopped = tokio::select! {
            stopped = self.sandbox.stop_container(name, grace) => stopped?,
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
            if !matches!(state, State::Running { .. }) {
                record.started = false;
                record.ready = false;
            }
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
