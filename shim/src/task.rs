//! The task service: containerd's task API (shim v2, ttrpc) mapped one to one onto a
//! [`PodRuntime`].
//!
//! The shim serves one pod. Its tasks are the pod's sandbox (infra) container, answered by the
//! shim itself (no pause process: the task reports the shim's pid and "runs" until killed),
//! and its Wasm containers, each a container of the runtime's sandbox. A container created
//! without a sandbox (`ctr run`) gets a sandbox of its own. Signals: `SIGTERM` (and `SIGINT`,
//! `SIGQUIT`, `SIGHUP`) starts the graceful stop — the termination request, then a hard stop
//! only when `SIGKILL` comes (containerd sends it once its own grace period is over); `SIGKILL`
//! hard-stops at once. Every change is published as a task event. The process exits at
//! `Shutdown` once no task is left.

mod ttrpc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use containerd_shim::api::{
    ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse, DeleteRequest,
    DeleteResponse, ExecProcessRequest, KillRequest, PidsRequest, PidsResponse, StartRequest,
    StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, Status,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::protos::cgroups_v2::metrics::{CPUStat, MemoryStat, Metrics};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::types::task::ProcessInfo;
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use wasmpod::{ExitReason, ExitStatus};

use crate::bundle::{self, TaskKind};
use crate::error::TaskError;
use crate::events::{Event, timestamp};
use crate::runtime::{PodRuntime, RootfsMount, Stdio, Usage};

/// How long a `SIGTERM`ed container may take before the runtime itself hard-stops it. In
/// practice containerd's `SIGKILL` comes first: CRI sends it when the pod's grace period ends.
pub const TERM_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// The exit code of a task stopped by `SIGKILL` (128 + 9).
pub const EXIT_SIGKILL: u32 = 137;

const SIGHUP: u32 = 1;
const SIGINT: u32 = 2;
const SIGQUIT: u32 = 3;
const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;

/// The type URL containerd decodes `Stats` with.
pub const METRICS_TYPE_URL: &str = "io.containerd.cgroups.v2.Metrics";

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Created, not started.
    Created,
    /// Its guest runs (the sandbox: the pod is up).
    Running,
    /// Its guest exited.
    Stopped,
}

impl TaskStatus {
    /// Whether `Start` is allowed.
    fn can_start(self) -> bool {
        self == TaskStatus::Created
    }

    /// Whether `Delete` is allowed: a running task must be killed first.
    fn can_delete(self) -> bool {
        self != TaskStatus::Running
    }

    /// Whether a signal has a process to reach (signalling a stopped task does nothing).
    fn can_signal(self) -> bool {
        self != TaskStatus::Stopped
    }

    /// Whether the task has a process (`Pids` lists it).
    fn has_process(self) -> bool {
        self == TaskStatus::Running
    }

    fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Created => "created",
            TaskStatus::Running => "running",
            TaskStatus::Stopped => "stopped",
        }
    }

    fn proto(self) -> Status {
        match self {
            TaskStatus::Created => Status::CREATED,
            TaskStatus::Running => Status::RUNNING,
            TaskStatus::Stopped => Status::STOPPED,
        }
    }
}

/// How a task's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exited {
    code: u32,
    at: Timestamp,
}

#[derive(Debug)]
struct TaskEntry {
    sandbox: bool,
    bundle: String,
    stdio: Stdio,
    status: TaskStatus,
    exit: watch::Sender<Option<Exited>>,
    /// Processes exec'd into the container, by exec id.
    execs: BTreeMap<String, ExecEntry>,
}

/// A process exec'd into a container task: its own states, exit and stdio.
#[derive(Debug)]
struct ExecEntry {
    argv: Vec<String>,
    stdio: Stdio,
    status: TaskStatus,
    exit: watch::Sender<Option<Exited>>,
    /// Ends the process (any signal: a Wasm process has no handlers).
    kill: CancellationToken,
}

#[derive(Debug, Default)]
struct Tasks {
    entries: BTreeMap<String, TaskEntry>,
    /// The id the runtime's sandbox was created for (the sandbox task, or a container that is
    /// a pod of its own), while it exists.
    sandbox: Option<String>,
}

/// The task service of one shim process. Cheap to clone.
#[derive(Debug)]
pub struct TaskService<R> {
    inner: Arc<Inner<R>>,
}

impl<R> Clone for TaskService<R> {
    fn clone(&self) -> Self {
        TaskService {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<R> {
    runtime: R,
    namespace: String,
    pid: u32,
    events: mpsc::UnboundedSender<Event>,
    tasks: Mutex<Tasks>,
    /// Serialises `create`: the sandbox exists before any container is created in it.
    create_lock: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl<R: PodRuntime> TaskService<R> {
    /// A service over `runtime` for containerd namespace `namespace`, reporting `pid` as every
    /// task's pid and sending its events to `events`. `shutdown` is cancelled when the shim
    /// should exit.
    pub fn new(
        runtime: R,
        namespace: impl Into<String>,
        pid: u32,
        events: mpsc::UnboundedSender<Event>,
        shutdown: CancellationToken,
    ) -> Self {
        TaskService {
            inner: Arc::new(Inner {
                runtime,
                namespace: namespace.into(),
                pid,
                events,
                tasks: Mutex::default(),
                create_lock: tokio::sync::Mutex::new(()),
                shutdown,
            }),
        }
    }

    /// The runtime the service drives.
    pub fn runtime(&self) -> &R {
        &self.inner.runtime
    }

    /// `Create`: the sandbox, or a container in it (after a sandbox of its own when there is
    /// none).
    #[tracing::instrument(name = "task_create", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub async fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse, TaskError> {
        let _serial = self.inner.create_lock.lock().await;
        let id = req.id.clone();
        if self.lock().entries.contains_key(&id) {
            return Err(TaskError::AlreadyExists { id });
        }
        if !req.checkpoint.is_empty() {
            return Err(TaskError::unimplemented("checkpoint restore"));
        }
        let bundle = PathBuf::from(&req.bundle);
        let stdio = Stdio {
            stdin: non_empty(&req.stdin),
            stdout: non_empty(&req.stdout),
            stderr: non_empty(&req.stderr),
            terminal: req.terminal,
        };
        let rootfs: Vec<RootfsMount> = req
            .rootfs
            .iter()
            .map(|m| RootfsMount {
                typ: m.type_.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect();
        let is_sandbox = match bundle::load(&id, &bundle)? {
            TaskKind::Sandbox(sandbox) => {
                if let Some(existing) = self.lock().sandbox.clone() {
                    return Err(TaskError::InvalidSpec {
                        id,
                        message: format!("this shim already serves pod sandbox {existing:?}"),
                    });
                }
                self.inner.runtime.create_sandbox(&sandbox).await?;
                self.lock().sandbox = Some(id.clone());
                true
            }
            TaskKind::Container(container) => {
                let standalone = self.lock().sandbox.is_none();
                if standalone {
                    let sandbox = container.standalone_sandbox(&self.inner.namespace);
                    self.inner.runtime.create_sandbox(&sandbox).await?;
                    self.lock().sandbox = Some(id.clone());
                }
                let created = self
                    .inner
                    .runtime
                    .create_container(&container, &stdio, &rootfs, &bundle.join("rootfs"))
                    .await;
                if let Err(error) = created {
                    if standalone {
                        self.lock().sandbox = None;
                        if let Err(cleanup) = self.inner.runtime.delete_sandbox().await {
                            tracing::warn!(container = id, error = %cleanup, "cannot delete the container's sandbox");
                        }
                    }
                    return Err(error);
                }
                false
            }
        };
        let mut tasks = self.lock();
        tasks.entries.insert(
            id.clone(),
            TaskEntry {
                sandbox: is_sandbox,
                bundle: req.bundle.clone(),
                stdio,
                status: TaskStatus::Created,
                exit: watch::Sender::new(None),
                execs: BTreeMap::new(),
            },
        );
        self.publish(Event::Create(TaskCreate {
            container_id: id.clone(),
            bundle: req.bundle,
            rootfs: req.rootfs,
            io: MessageField::some(TaskIO {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
                ..TaskIO::default()
            }),
            checkpoint: req.checkpoint,
            pid: self.inner.pid,
            ..TaskCreate::default()
        }));
        tracing::info!(
            id,
            kind = if is_sandbox { "sandbox" } else { "container" },
            "task created"
        );
        Ok(CreateTaskResponse {
            pid: self.inner.pid,
            ..CreateTaskResponse::default()
        })
    }

    /// `Start`: the sandbox is up at once; a container's guest starts running.
    #[tracing::instrument(name = "task_start", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub async fn start(&self, req: StartRequest) -> Result<StartResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return self.start_exec(req.id, req.exec_id);
        }
        let id = req.id;
        let is_sandbox = {
            let tasks = self.lock();
            let entry = find(&tasks, &id)?;
            if !entry.status.can_start() {
                return Err(bad_state(&id, entry.status, "start"));
            }
            entry.sandbox
        };
        if !is_sandbox {
            self.inner.runtime.start_container(&id)?;
        }
        {
            let mut tasks = self.lock();
            if let Some(entry) = tasks.entries.get_mut(&id) {
                entry.status = TaskStatus::Running;
            }
            self.publish(Event::Start(TaskStart {
                container_id: id.clone(),
                pid: self.inner.pid,
                ..TaskStart::default()
            }));
        }
        if !is_sandbox {
            let service = self.clone();
            let id = id.clone();
            tokio::spawn(async move { service.monitor(id).await });
        }
        tracing::info!(id, "task started");
        Ok(StartResponse {
            pid: self.inner.pid,
            ..StartResponse::default()
        })
    }

    /// Waits for a started container's guest to end and reports it.
    async fn monitor(&self, id: String) {
        let exit = match self.inner.runtime.wait_container(&id).await {
            Ok(exit) => exit,
            Err(error) => {
                tracing::warn!(id, %error, "lost track of a container; reporting it killed");
                ExitStatus::killed("lost")
            }
        };
        if exit.reason == ExitReason::OOMKilled {
            self.publish(Event::Oom(TaskOOM {
                container_id: id.clone(),
                ..TaskOOM::default()
            }));
        }
        tracing::info!(
            id,
            code = exit.code,
            reason = exit.reason.as_str(),
            "container exited"
        );
        self.exited(&id, u32::try_from(exit.code).unwrap_or(255));
    }

    /// Records that task `id`'s process ended with `code` and publishes its exit.
    fn exited(&self, id: &str, code: u32) {
        let mut tasks = self.lock();
        let Some(entry) = tasks.entries.get_mut(id) else {
            return;
        };
        if entry.status == TaskStatus::Stopped {
            return;
        }
        let exited = Exited {
            code,
            at: Timestamp::now(),
        };
        entry.status = TaskStatus::Stopped;
        entry.exit.send_replace(Some(exited));
        self.publish_exit(id, id, exited);
    }

    /// Publishes that process `process` (the task's own: its id; an exec: its exec id) of task
    /// `id` ended.
    fn publish_exit(&self, id: &str, process: &str, exited: Exited) {
        self.publish(Event::Exit(TaskExit {
            container_id: id.to_owned(),
            id: process.to_owned(),
            pid: self.inner.pid,
            exit_status: exited.code,
            exited_at: MessageField::some(timestamp(exited.at)),
            ..TaskExit::default()
        }));
    }

    /// `State`.
    #[tracing::instrument(name = "task_state", level = "debug", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub fn state(&self, req: StateRequest) -> Result<StateResponse, TaskError> {
        let tasks = self.lock();
        let entry = find(&tasks, &req.id)?;
        if !req.exec_id.is_empty() {
            let exec = find_exec(entry, &req.id, &req.exec_id)?;
            return Ok(state_response(
                &req,
                &entry.bundle,
                exec.status,
                &exec.stdio,
                *exec.exit.borrow(),
                self.inner.pid,
            ));
        }
        let exit = *entry.exit.borrow();
        Ok(state_response(
            &req,
            &entry.bundle,
            entry.status,
            &entry.stdio,
            exit,
            self.inner.pid,
        ))
    }

    /// `Wait`: until the task's process ended.
    #[tracing::instrument(name = "task_wait", level = "debug", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub async fn wait(&self, req: WaitRequest) -> Result<WaitResponse, TaskError> {
        let mut exit = {
            let tasks = self.lock();
            let entry = find(&tasks, &req.id)?;
            if req.exec_id.is_empty() {
                entry.exit.subscribe()
            } else {
                find_exec(entry, &req.id, &req.exec_id)?.exit.subscribe()
            }
        };
        let exited = exit
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|e| *e)
            .ok_or_else(|| TaskError::NotFound { id: req.id.clone() })?;
        Ok(WaitResponse {
            exit_status: exited.code,
            exited_at: MessageField::some(timestamp(exited.at)),
            ..WaitResponse::default()
        })
    }

    /// `Kill`: `SIGKILL` hard-stops; `SIGTERM`, `SIGINT`, `SIGQUIT` and `SIGHUP` start the
    /// graceful stop; signal 0 checks the task exists. Killing the sandbox ends it (and with
    /// `SIGKILL` every container still running).
    #[tracing::instrument(name = "task_kill", skip_all, fields(pod = %self.pod(), container = %req.id, signal = req.signal))]
    pub fn kill(&self, req: KillRequest) -> Result<(), TaskError> {
        if !req.exec_id.is_empty() {
            let tasks = self.lock();
            let exec = find_exec(find(&tasks, &req.id)?, &req.id, &req.exec_id)?;
            if req.signal != 0 {
                tracing::info!(exec = req.exec_id, signal = req.signal, "kill exec");
                exec.kill.cancel();
            }
            return Ok(());
        }
        let id = req.id;
        let (is_sandbox, status) = {
            let tasks = self.lock();
            let entry = find(&tasks, &id)?;
            (entry.sandbox, entry.status)
        };
        let graceful = matches!(req.signal, SIGTERM | SIGINT | SIGQUIT | SIGHUP);
        if req.signal != SIGKILL && req.signal != 0 && !graceful {
            return Err(TaskError::unimplemented(format!(
                "signal {} (a WebAssembly guest has no signals: SIGTERM requests termination, SIGKILL stops it)",
                req.signal
            )));
        }
        tracing::info!(id, signal = req.signal, "kill");
        if req.signal == 0 || !status.can_signal() {
            return Ok(());
        }
        if is_sandbox {
            if req.signal == SIGKILL {
                for container in self.running_containers() {
                    if let Err(error) = self.inner.runtime.kill_container(&container) {
                        tracing::warn!(container, %error, "cannot kill container");
                    }
                }
            }
            // The pause process it stands for exits 0 on SIGTERM/SIGINT.
            let code = if req.signal == SIGKILL {
                EXIT_SIGKILL
            } else {
                0
            };
            self.exited(&id, code);
            return Ok(());
        }
        match (status, req.signal) {
            (TaskStatus::Created, signal) => self.exited(&id, 128 + signal),
            (_, SIGKILL) => self.inner.runtime.kill_container(&id)?,
            _ => {
                let service = self.clone();
                tokio::spawn(async move {
                    if let Err(error) = service.inner.runtime.stop_container(&id, TERM_GRACE).await
                    {
                        tracing::warn!(id, %error, "graceful stop failed");
                    }
                });
            }
        }
        Ok(())
    }

    fn running_containers(&self) -> Vec<String> {
        self.lock()
            .entries
            .iter()
            .filter(|(_, e)| !e.sandbox && e.status == TaskStatus::Running)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// `Delete`: removes a task that is not running; the last one takes the sandbox with it.
    #[tracing::instrument(name = "task_delete", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return self.delete_exec(&req.id, &req.exec_id);
        }
        let id = req.id;
        let is_sandbox = {
            let tasks = self.lock();
            let entry = find(&tasks, &id)?;
            if !entry.status.can_delete() {
                return Err(bad_state(&id, entry.status, "delete"));
            }
            entry.sandbox
        };
        if !is_sandbox {
            match self.inner.runtime.remove_container(&id) {
                Err(TaskError::Runtime(e)) if e.kind() == wasmpod::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        let (exit, last) = {
            let mut tasks = self.lock();
            let entry = tasks.entries.remove(&id);
            let exit = entry.and_then(|e| *e.exit.borrow()).unwrap_or(Exited {
                code: 0,
                at: Timestamp::now(),
            });
            self.publish(Event::Delete(TaskDelete {
                container_id: id.clone(),
                pid: self.inner.pid,
                exit_status: exit.code,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..TaskDelete::default()
            }));
            let last = tasks.entries.is_empty() && tasks.sandbox.take().is_some();
            (exit, last)
        };
        tracing::info!(id, "task deleted");
        if last && let Err(error) = self.inner.runtime.delete_sandbox().await {
            tracing::warn!(%error, "cannot delete the pod sandbox");
        }
        Ok(DeleteResponse {
            pid: self.inner.pid,
            exit_status: exit.code,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..DeleteResponse::default()
        })
    }

    /// `Pids`: the shim's pid for a running task (its guest runs in the shim).
    #[tracing::instrument(name = "task_pids", level = "debug", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub fn pids(&self, req: PidsRequest) -> Result<PidsResponse, TaskError> {
        let tasks = self.lock();
        let entry = find(&tasks, &req.id)?;
        let mut response = PidsResponse::default();
        if entry.status.has_process() {
            response.processes.push(ProcessInfo {
                pid: self.inner.pid,
                ..ProcessInfo::default()
            });
        }
        Ok(response)
    }

    /// `Stats`: the container's CPU time and memory, or the pod's for the sandbox, as cgroup v2
    /// metrics (what CRI's `ContainerStats` decodes).
    #[tracing::instrument(name = "task_stats", level = "debug", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub fn stats(&self, req: StatsRequest) -> Result<StatsResponse, TaskError> {
        let is_sandbox = find(&self.lock(), &req.id)?.sandbox;
        let usage = if is_sandbox {
            self.inner.runtime.sandbox_usage()
        } else {
            self.inner.runtime.container_usage(&req.id)?
        };
        let metrics = metrics(usage);
        let value = metrics
            .write_to_bytes()
            .map_err(|e| TaskError::io("encode metrics", &req.id, std::io::Error::other(e)))?;
        Ok(StatsResponse {
            stats: MessageField::some(Any {
                type_url: METRICS_TYPE_URL.to_owned(),
                value,
                ..Any::default()
            }),
            ..StatsResponse::default()
        })
    }

    /// `Update` (CRI `UpdateContainerResources`, a pod resize): the container's new memory
    /// and CPU limits, from the `LinuxResources` containerd sends (JSON in an `Any`). The pod
    /// sandbox's own resources are the pod's cgroup's, which kubelet manages: accepted and
    /// left alone.
    #[tracing::instrument(name = "task_update", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub fn update(&self, req: UpdateTaskRequest) -> Result<(), TaskError> {
        if find(&self.lock(), &req.id)?.sandbox {
            return Ok(());
        }
        let resources: oci_spec::runtime::LinuxResources = match req.resources.as_ref() {
            Some(any) if !any.value.is_empty() => {
                serde_json::from_slice(&any.value).map_err(|e| TaskError::InvalidSpec {
                    id: req.id.clone(),
                    message: format!("update: resources: {e}"),
                })?
            }
            _ => return Ok(()),
        };
        let (memory, cpu) = crate::bundle::limits(Some(&resources));
        self.inner.runtime.update_container(&req.id, memory, cpu)
    }

    /// `Connect`.
    #[tracing::instrument(name = "task_connect", level = "debug", skip_all, fields(pod = %self.pod(), container = %req.id))]
    pub fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse, TaskError> {
        find(&self.lock(), &req.id)?;
        Ok(ConnectResponse {
            shim_pid: self.inner.pid,
            task_pid: self.inner.pid,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..ConnectResponse::default()
        })
    }

    /// `Shutdown`: the shim exits once no task is left.
    #[tracing::instrument(name = "task_shutdown", skip_all, fields(pod = %self.pod()))]
    pub fn shutdown(&self) {
        if self.lock().entries.is_empty() {
            tracing::info!("no task left: shutting down");
            self.inner.shutdown.cancel();
        }
    }

    /// `Exec`: adds a process to running container `req.id`, to start with `Start`. Its
    /// command is the OCI process spec's `args`; the rest of that spec (env, cwd, user) is
    /// the container's own: an exec'd process sees what the container's guest sees.
    #[tracing::instrument(name = "task_exec", skip_all, fields(pod = %self.pod(), container = %req.id, exec = %req.exec_id))]
    pub fn exec(&self, req: ExecProcessRequest) -> Result<(), TaskError> {
        let spec = req
            .spec
            .as_ref()
            .map(|any| any.value.as_slice())
            .unwrap_or_default();
        let process: oci_spec::runtime::Process =
            serde_json::from_slice(spec).map_err(|e| TaskError::InvalidSpec {
                id: req.exec_id.clone(),
                message: format!("exec process spec: {e}"),
            })?;
        let argv = process.args().clone().unwrap_or_default();
        if argv.is_empty() {
            return Err(TaskError::InvalidSpec {
                id: req.exec_id,
                message: "exec without a command (process.args is empty)".into(),
            });
        }
        let mut tasks = self.lock();
        let entry = tasks
            .entries
            .get_mut(&req.id)
            .ok_or_else(|| TaskError::NotFound { id: req.id.clone() })?;
        if entry.sandbox {
            return Err(TaskError::unimplemented(
                "exec into the pod sandbox (it runs no process)",
            ));
        }
        if !entry.status.has_process() {
            return Err(bad_state(&req.id, entry.status, "exec"));
        }
        if entry.execs.contains_key(&req.exec_id) {
            return Err(TaskError::AlreadyExists { id: req.exec_id });
        }
        tracing::info!(argv = ?argv, "exec added");
        entry.execs.insert(
            req.exec_id.clone(),
            ExecEntry {
                argv,
                stdio: Stdio {
                    stdin: non_empty(&req.stdin),
                    stdout: non_empty(&req.stdout),
                    stderr: non_empty(&req.stderr),
                    terminal: req.terminal,
                },
                status: TaskStatus::Created,
                exit: watch::Sender::new(None),
                kill: CancellationToken::new(),
            },
        );
        self.publish(Event::ExecAdded(TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
            ..TaskExecAdded::default()
        }));
        Ok(())
    }

    /// `Start` of an exec'd process: it runs until it ends, is killed, or its container stops.
    fn start_exec(&self, id: String, exec_id: String) -> Result<StartResponse, TaskError> {
        let (argv, stdio, kill) = {
            let mut tasks = self.lock();
            let entry = tasks
                .entries
                .get_mut(&id)
                .ok_or_else(|| TaskError::NotFound { id: id.clone() })?;
            let exec = entry
                .execs
                .get_mut(&exec_id)
                .ok_or_else(|| TaskError::NotFound {
                    id: exec_id.clone(),
                })?;
            if !exec.status.can_start() {
                return Err(bad_state(&exec_id, exec.status, "start"));
            }
            exec.status = TaskStatus::Running;
            (exec.argv.clone(), exec.stdio.clone(), exec.kill.clone())
        };
        self.publish(Event::ExecStarted(TaskExecStarted {
            container_id: id.clone(),
            exec_id: exec_id.clone(),
            pid: self.inner.pid,
            ..TaskExecStarted::default()
        }));
        tracing::info!(exec_id, "exec started");
        let service = self.clone();
        tokio::spawn(async move {
            let exit = service
                .inner
                .runtime
                .exec_in_container(&id, argv, &stdio, kill)
                .await;
            let code = match exit {
                Ok(exit) => u32::try_from(exit.code).unwrap_or(255),
                Err(error) => {
                    tracing::warn!(container = id, exec = exec_id, %error, "exec failed");
                    wasmpod::pod::EXIT_NOT_EXECUTABLE as u32
                }
            };
            service.exec_exited(&id, &exec_id, code);
        });
        Ok(StartResponse {
            pid: self.inner.pid,
            ..StartResponse::default()
        })
    }

    /// Records that exec `exec_id` of task `id` ended with `code` and publishes its exit.
    fn exec_exited(&self, id: &str, exec_id: &str, code: u32) {
        let mut tasks = self.lock();
        let Some(exec) = tasks
            .entries
            .get_mut(id)
            .and_then(|entry| entry.execs.get_mut(exec_id))
        else {
            return;
        };
        let exited = Exited {
            code,
            at: Timestamp::now(),
        };
        exec.status = TaskStatus::Stopped;
        exec.exit.send_replace(Some(exited));
        tracing::info!(exec_id, code, "exec exited");
        self.publish_exit(id, exec_id, exited);
    }

    /// `Delete` of an exec'd process that is not running.
    fn delete_exec(&self, id: &str, exec_id: &str) -> Result<DeleteResponse, TaskError> {
        let mut tasks = self.lock();
        let entry = tasks
            .entries
            .get_mut(id)
            .ok_or_else(|| TaskError::NotFound { id: id.to_owned() })?;
        let status = find_exec(entry, id, exec_id)?.status;
        if !status.can_delete() {
            return Err(bad_state(exec_id, status, "delete"));
        }
        let exit = entry
            .execs
            .remove(exec_id)
            .and_then(|e| *e.exit.borrow())
            .unwrap_or(Exited {
                code: 0,
                at: Timestamp::now(),
            });
        Ok(DeleteResponse {
            pid: self.inner.pid,
            exit_status: exit.code,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..DeleteResponse::default()
        })
    }

    /// The pod this shim holds: its sandbox's id, once created (every span names it).
    fn pod(&self) -> String {
        self.lock().sandbox.clone().unwrap_or_default()
    }

    fn publish(&self, event: Event) {
        // The forwarding loop ends only when the process does.
        let _ = self.inner.events.send(event);
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn find<'a>(tasks: &'a Tasks, id: &str) -> Result<&'a TaskEntry, TaskError> {
    tasks
        .entries
        .get(id)
        .ok_or_else(|| TaskError::NotFound { id: id.to_owned() })
}

fn bad_state(id: &str, status: TaskStatus, op: &'static str) -> TaskError {
    TaskError::BadState {
        id: id.to_owned(),
        state: status.as_str(),
        op,
    }
}

fn find_exec<'a>(
    entry: &'a TaskEntry,
    id: &str,
    exec_id: &str,
) -> Result<&'a ExecEntry, TaskError> {
    entry.execs.get(exec_id).ok_or_else(|| TaskError::NotFound {
        id: format!("{id}/{exec_id}"),
    })
}

/// `State`'s answer for a task or one of its exec'd processes.
fn state_response(
    req: &StateRequest,
    bundle: &str,
    status: TaskStatus,
    stdio: &Stdio,
    exit: Option<Exited>,
    pid: u32,
) -> StateResponse {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    StateResponse {
        id: req.id.clone(),
        exec_id: req.exec_id.clone(),
        bundle: bundle.to_owned(),
        pid,
        status: status.proto().into(),
        stdin: path(&stdio.stdin),
        stdout: path(&stdio.stdout),
        stderr: path(&stdio.stderr),
        terminal: stdio.terminal,
        exit_status: exit.map_or(0, |e| e.code),
        exited_at: MessageField::from_option(exit.map(|e| timestamp(e.at))),
        ..StateResponse::default()
    }
}

fn non_empty(path: &str) -> Option<PathBuf> {
    (!path.is_empty()).then(|| Path::new(path).to_owned())
}

fn metrics(usage: Usage) -> Metrics {
    let usec = u64::try_from(usage.cpu.as_micros()).unwrap_or(u64::MAX);
    Metrics {
        cpu: MessageField::some(CPUStat {
            usage_usec: usec,
            user_usec: usec,
            ..CPUStat::default()
        }),
        memory: MessageField::some(MemoryStat {
            usage: usage.memory,
            max_usage: usage.memory_peak,
            ..MemoryStat::default()
        }),
        ..Metrics::default()
    }
}

#[cfg(test)]
mod tests;
