//! Pod and container status as Kubernetes reports it: phase, container states, restart counts;
//! convertible to the `v1` `PodStatus` (what `wasmpod run -o json` prints) and to the one-line
//! summary `kubectl get pods -w` prints.

use jiff::Timestamp;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::engine::ExitStatus;
use crate::host::CgroupStats;

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Init containers have not all completed yet.
    Pending,
    /// App containers were started and not all ended for good.
    Running,
    /// Every app container ended with exit code 0 and will not be restarted.
    Succeeded,
    /// A container failed for good (or the pod was stopped or hit its deadline).
    Failed,
}

impl Phase {
    /// The phase as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// A container's state, as in `containerStatuses[].state`.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not running: not started yet, or waiting on back-off (`CrashLoopBackOff`).
    Waiting {
        /// `PodInitializing`, `ContainerCreating` or `CrashLoopBackOff`.
        reason: String,
    },
    /// Its guest runs.
    Running {
        /// When it started.
        started_at: Timestamp,
    },
    /// Its guest ended.
    Terminated {
        /// How.
        exit: ExitStatus,
        /// When it started.
        started_at: Timestamp,
        /// When it ended.
        finished_at: Timestamp,
    },
}

/// One container's status.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRecord {
    /// Its name.
    pub name: String,
    /// Its image as written in the manifest.
    pub image: String,
    /// Its current state.
    pub state: State,
    /// The state of its previous run, once restarted.
    pub last_state: Option<State>,
    /// How many times it was restarted.
    pub restart_count: u32,
    /// CPU time of its latest run.
    pub cpu_time: std::time::Duration,
    /// Peak memory (linear memories and tables) of its latest run, in bytes.
    pub memory_peak: u64,
    /// It runs and its startup probe (if any) passed.
    pub started: bool,
    /// It is started and its readiness probe (if any) passes: it may take traffic.
    pub ready: bool,
    /// A native sidecar (an init container that keeps running): it counts in READY and in
    /// the pod's readiness, and as initialized once started.
    pub sidecar: bool,
}

impl ContainerRecord {
    /// A container not started yet.
    pub fn waiting(name: &str, image: &str, reason: &str) -> Self {
        ContainerRecord {
            name: name.to_owned(),
            image: image.to_owned(),
            state: State::Waiting {
                reason: reason.to_owned(),
            },
            last_state: None,
            restart_count: 0,
            cpu_time: std::time::Duration::ZERO,
            memory_peak: 0,
            started: false,
            ready: false,
            sidecar: false,
        }
    }

    /// How it ended, if its current state is terminated.
    pub fn exit(&self) -> Option<&ExitStatus> {
        match &self.state {
            State::Terminated { exit, .. } => Some(exit),
            _ => None,
        }
    }

    /// Whether it runs now.
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

/// A pod's status.
#[derive(Debug, Clone, PartialEq)]
pub struct PodStatus {
    /// The pod's name.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Why it ended, when not by its containers (`DeadlineExceeded`).
    pub reason: Option<String>,
    /// A one-line explanation of `reason`.
    pub message: Option<String>,
    /// When the pod started.
    pub start_time: Timestamp,
    /// `initContainerStatuses`, in manifest order.
    pub init_containers: Vec<ContainerRecord>,
    /// `containerStatuses`, in manifest order.
    pub containers: Vec<ContainerRecord>,
    /// What the host could not enforce (a missing cgroup controller...), one line each; each
    /// is a `wasmpod.io/HostLimits` condition with status `False`.
    pub warnings: Vec<String>,
    /// What the pod's process used, when the pod had a process of its own
    /// ([`PodProcess::run_to_end`](crate::runner::PodProcess::run_to_end)).
    pub process: Option<ProcessUsage>,
}

/// What a pod's process used over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    /// The process's peak resident memory (`VmHWM`), in bytes.
    pub peak_rss: Option<u64>,
    /// What the pod's cgroup used, read just before it was removed.
    pub cgroup: Option<CgroupStats>,
}

impl PodStatus {
    /// The status of `spec` before anything ran.
    pub fn new(spec: &crate::spec::PodSpec) -> Self {
        let app_reason = if spec.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        PodStatus {
            name: spec.name.clone(),
            phase: Phase::Pending,
            reason: None,
            message: None,
            start_time: Timestamp::now(),
            init_containers: spec
                .init_containers
                .iter()
                .map(|c| ContainerRecord {
                    sidecar: c.sidecar,
                    ..ContainerRecord::waiting(&c.name, &c.image, "PodInitializing")
                })
                .collect(),
            containers: spec
                .containers
                .iter()
                .map(|c| ContainerRecord::waiting(&c.name, &c.image, app_reason))
                .collect(),
            warnings: Vec::new(),
            process: None,
        }
    }

    /// This status with `warnings` from the host layer.
    pub fn with_warnings(mut self, warnings: &[String]) -> Self {
        self.warnings = warnings.to_vec();
        self
    }

    /// The app container or init container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerRecord> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .find(|c| c.name == name)
    }

    /// The containers whose readiness is the pod's: app containers and sidecars.
    fn serving(&self) -> impl Iterator<Item = &ContainerRecord> {
        (self.init_containers.iter().filter(|c| c.sidecar)).chain(&self.containers)
    }

    /// `(ready containers, containers)` of the app containers and sidecars: kubectl's READY
    /// column.
    pub fn ready(&self) -> (usize, usize) {
        let ready = self.serving().filter(|c| c.ready).count();
        (ready, self.serving().count())
    }

    /// Whether every app container and sidecar is ready: the pod's `Ready` condition.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Running && self.serving().all(|c| c.ready)
    }

    /// Whether init container `c` is done initializing: completed, or a sidecar started
    /// (it stays so once the app containers run, restarts and all).
    fn initialized(&self, c: &ContainerRecord) -> bool {
        match c.sidecar {
            true => c.started || self.phase != Phase::Pending,
            false => c.exit().is_some_and(ExitStatus::success),
        }
    }

    /// The pod's conditions, as kubelet reports them: `PodScheduled`, `Initialized`,
    /// `ContainersReady`, `Ready`, then one `wasmpod.io/HostLimits` per warning.
    pub fn conditions(&self) -> Vec<k8s::PodCondition> {
        let condition = |type_: &str, unmet: Vec<&str>, reason: &str, what: &str| {
            let met = unmet.is_empty();
            k8s::PodCondition {
                type_: type_.into(),
                status: if met { "True" } else { "False" }.into(),
                reason: (!met).then(|| reason.to_owned()),
                message: (!met)
                    .then(|| format!("containers with {what} status: [{}]", unmet.join(" "))),
                ..Default::default()
            }
        };
        let uninitialized: Vec<&str> = (self.init_containers.iter())
            .filter(|c| !self.initialized(c))
            .map(|c| c.name.as_str())
            .collect();
        let unready: Vec<&str> = (self.serving())
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let ended = matches!(self.phase, Phase::Succeeded | Phase::Failed);
        let ready = |type_: &str| {
            let mut ready = condition(type_, unready.clone(), "ContainersNotReady", "unready");
            if ended {
                ready.status = "False".into();
                ready.reason = Some("PodCompleted".into());
                ready.message = None;
            }
            ready
        };
        let mut conditions = vec![
            condition("PodScheduled", Vec::new(), "", ""),
            condition(
                "Initialized",
                uninitialized.clone(),
                "ContainersNotInitialized",
                "incomplete",
            ),
            ready("ContainersReady"),
            ready("Ready"),
        ];
        conditions.extend(self.warnings.iter().map(|warning| k8s::PodCondition {
            type_: "wasmpod.io/HostLimits".into(),
            status: "False".into(),
            reason: Some("NotEnforced".into()),
            message: Some(warning.clone()),
            ..Default::default()
        }));
        conditions
    }

    /// The sum of every container's restarts: kubectl's RESTARTS column.
    pub fn restarts(&self) -> u32 {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .map(|c| c.restart_count)
            .sum()
    }

    /// kubectl's STATUS column: `Init:0/1`, `Init:Error`, `Running`, `Completed`, `Error`,
    /// `CrashLoopBackOff`, `DeadlineExceeded`...
    pub fn summary(&self) -> String {
        if let Some(reason) = &self.reason {
            return reason.clone();
        }
        let pending = (self.init_containers.iter()).position(|c| !self.initialized(c));
        if let Some(done) = pending {
            let pending = &self.init_containers[done];
            return match &pending.state {
                State::Waiting { reason } if reason != "PodInitializing" => {
                    format!("Init:{reason}")
                }
                State::Terminated { exit, .. } => format!("Init:{}", exit.reason.as_str()),
                _ => format!("Init:{done}/{}", self.init_containers.len()),
            };
        }
        let mut summary = None;
        for c in self.containers.iter().rev() {
            match &c.state {
                State::Waiting { reason } if summary.is_none() => summary = Some(reason.clone()),
                State::Terminated { exit, .. } if summary.is_none() => {
                    summary = Some(exit.reason.as_str().to_owned())
                }
                State::Running { .. } if self.phase == Phase::Running => {
                    return "Running".into();
                }
                _ => {}
            }
        }
        summary.unwrap_or_else(|| self.phase.as_str().to_owned())
    }

    /// The Kubernetes `v1` `PodStatus` as JSON, plus wasmpod's own figures under the key
    /// `wasmpod`, which Kubernetes clients ignore: `{"containers": {NAME: {"cpuTimeMillis",
    /// "memoryPeakBytes"}}}`, and with [`PodStatus::process`] `"runnerPeakRSSBytes"` and
    /// `"cgroup": {"cpuUsageMillis", "nrThrottled", "memoryCurrentBytes", "oomKills"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self.to_k8s()).unwrap_or_default();
        let containers: serde_json::Map<String, serde_json::Value> = self
            .init_containers
            .iter()
            .chain(&self.containers)
            .map(|c| {
                let figures = serde_json::json!({
                    "cpuTimeMillis": c.cpu_time.as_millis() as u64,
                    "memoryPeakBytes": c.memory_peak,
                });
                (c.name.clone(), figures)
            })
            .collect();
        let mut figures = serde_json::json!({ "containers": containers });
        if let Some(process) = &self.process {
            if let Some(peak) = process.peak_rss {
                figures["runnerPeakRSSBytes"] = peak.into();
            }
            if let Some(stats) = &process.cgroup {
                figures["cgroup"] = serde_json::json!({
                    "cpuUsageMillis": stats.cpu_usage.as_millis() as u64,
                    "nrThrottled": stats.nr_throttled,
                    "memoryCurrentBytes": stats.memory_current,
                    "oomKills": stats.oom_kills,
                });
            }
        }
        if let Some(object) = json.as_object_mut() {
            object.insert("wasmpod".into(), figures);
        }
        json
    }

    /// The Kubernetes `v1` `PodStatus`.
    pub fn to_k8s(&self) -> k8s::PodStatus {
        k8s::PodStatus {
            phase: Some(self.phase.as_str().to_owned()),
            reason: self.reason.clone(),
            message: self.message.clone(),
            start_time: Some(Time(self.start_time)),
            init_container_statuses: Some(self.init_containers.iter().map(to_k8s).collect()),
            container_statuses: Some(self.containers.iter().map(to_k8s).collect()),
            conditions: Some(self.conditions()),
            ..Default::default()
        }
    }
}

fn to_k8s(record: &ContainerRecord) -> k8s::ContainerStatus {
    k8s::ContainerStatus {
        name: record.name.clone(),
        image: record.image.clone(),
        image_id: String::new(),
        ready: record.ready,
        started: Some(record.started),
        restart_count: i32::try_from(record.restart_count).unwrap_or(i32::MAX),
        state: Some(state_to_k8s(&record.state)),
        last_state: record.last_state.as_ref().map(state_to_k8s),
        ..Default::default()
    }
}

fn state_to_k8s(state: &State) -> k8s::ContainerState {
    match state {
        State::Waiting { reason } => k8s::ContainerState {
            waiting: Some(k8s::ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: None,
            }),
            ..Default::default()
        },
        State::Running { started_at } => k8s::ContainerState {
            running: Some(k8s::ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        State::Terminated {
            exit,
            started_at,
            finished_at,
        } => k8s::ContainerState {
            terminated: Some(k8s::ContainerStateTerminated {
                exit_code: exit.code,
                reason: Some(exit.reason.as_str().to_owned()),
                message: exit.message.clone(),
                started_at: Some(Time(*started_at)),
                finished_at: Some(Time(*finished_at)),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}
