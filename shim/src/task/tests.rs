//! The task service's logic against a stub runtime: task states, signals, events, the pod's
//! sandbox and the shim's exit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use containerd_shim::api::{
    ConnectRequest, CreateTaskRequest, DeleteRequest, KillRequest, PidsRequest, StartRequest,
    StateRequest, StatsRequest, Status, WaitRequest,
};
use containerd_shim::protos::cgroups_v2::metrics::Metrics;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::ttrpc::Code;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use wasmpod::{ExitReason, ExitStatus};

use super::*;
use crate::bundle::{ContainerRequest, SandboxRequest};
use crate::runtime::{PodRuntime, RootfsMount, Stdio, Usage};

const PID: u32 = 4242;

/// Records every call; containers end when the test says so.
#[derive(Debug, Default)]
struct Stub {
    calls: Mutex<Vec<String>>,
    exits: Mutex<HashMap<String, watch::Sender<Option<ExitStatus>>>>,
}

impl Stub {
    fn call(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    /// Ends container `id`'s guest with `exit`.
    fn end(&self, id: &str, exit: ExitStatus) {
        let exits = self.exits.lock().expect("exits");
        exits
            .get(id)
            .expect("a created container")
            .send_replace(Some(exit));
    }
}

#[async_trait]
impl PodRuntime for Stub {
    async fn create_sandbox(&self, sandbox: &SandboxRequest) -> Result<(), TaskError> {
        self.call(format!("create_sandbox {} {}", sandbox.id, sandbox.name));
        Ok(())
    }

    async fn create_container(
        &self,
        container: &ContainerRequest,
        _stdio: &Stdio,
        _rootfs: &[RootfsMount],
        _rootfs_dir: &Path,
    ) -> Result<(), TaskError> {
        if container.module_arg.contains("missing") {
            return Err(TaskError::ModuleNotFound {
                id: container.id.clone(),
                module: container.module_arg.clone(),
                path: container.spec.module.clone(),
            });
        }
        self.call(format!("create_container {}", container.id));
        self.exits
            .lock()
            .expect("exits")
            .insert(container.id.clone(), watch::Sender::new(None));
        Ok(())
    }

    fn start_container(&self, id: &str) -> Result<(), TaskError> {
        self.call(format!("start {id}"));
        Ok(())
    }

    async fn wait_container(&self, id: &str) -> Result<ExitStatus, TaskError> {
        let mut exit = self
            .exits
            .lock()
            .expect("exits")
            .get(id)
            .ok_or_else(|| TaskError::NotFound { id: id.into() })?
            .subscribe();
        let exit = exit.wait_for(Option::is_some).await.expect("sender kept");
        Ok(exit.clone().expect("some"))
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), TaskError> {
        self.call(format!("stop {id} {}s", grace.as_secs()));
        Ok(())
    }

    fn kill_container(&self, id: &str) -> Result<(), TaskError> {
        self.call(format!("kill {id}"));
        self.end(id, ExitStatus::killed("stopped"));
        Ok(())
    }

    fn update_container(
        &self,
        id: &str,
        memory_limit: Option<u64>,
        cpu_limit: Option<u64>,
    ) -> Result<(), TaskError> {
        self.call(format!("update {id} {memory_limit:?} {cpu_limit:?}"));
        Ok(())
    }

    fn remove_container(&self, id: &str) -> Result<(), TaskError> {
        self.call(format!("remove {id}"));
        Ok(())
    }

    /// `exit N` exits N; `hang` runs until killed.
    async fn exec_in_container(
        &self,
        id: &str,
        argv: Vec<String>,
        _stdio: &Stdio,
        kill: CancellationToken,
    ) -> Result<ExitStatus, TaskError> {
        self.call(format!("exec {id} {}", argv.join(" ")));
        match argv.first().map(String::as_str) {
            Some("hang") => {
                kill.cancelled().await;
                Ok(ExitStatus::killed("exec killed"))
            }
            _ => Ok(ExitStatus::exited(
                argv.get(1).and_then(|c| c.parse().ok()).unwrap_or(0),
            )),
        }
    }

    fn container_usage(&self, _id: &str) -> Result<Usage, TaskError> {
        Ok(Usage {
            cpu: Duration::from_millis(3),
            memory: 1 << 20,
            memory_peak: 2 << 20,
        })
    }

    fn sandbox_usage(&self) -> Usage {
        Usage {
            cpu: Duration::from_millis(7),
            memory: 5 << 20,
            memory_peak: 6 << 20,
        }
    }

    async fn delete_sandbox(&self) -> Result<(), TaskError> {
        self.call("delete_sandbox".into());
        Ok(())
    }
}

struct Fixture {
    service: TaskService<Stub>,
    events: mpsc::UnboundedReceiver<Event>,
    shutdown: CancellationToken,
    bundles: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        Fixture {
            service: TaskService::new(Stub::default(), "k8s.io", PID, tx, shutdown.clone()),
            events,
            shutdown,
            bundles: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A fixture with sandbox `sb` started and container `c1` (`/app.wasm`) created in it.
    async fn with_pod() -> Self {
        let f = Fixture::new();
        f.create_sandbox("sb").await;
        f.create_container("c1", Some("sb"), "/app.wasm")
            .await
            .expect("create c1");
        f
    }

    fn stub(&self) -> &Stub {
        self.service.runtime()
    }

    /// Writes a bundle for `id` with `spec` and returns its `Create` request.
    fn request(&self, id: &str, spec: serde_json::Value) -> CreateTaskRequest {
        let bundle = self.bundles.path().join(id);
        std::fs::create_dir_all(&bundle).expect("bundle");
        std::fs::write(bundle.join("config.json"), spec.to_string()).expect("config.json");
        CreateTaskRequest {
            id: id.into(),
            bundle: bundle.to_string_lossy().into_owned(),
            stdout: format!("/fifo/{id}-out"),
            ..CreateTaskRequest::default()
        }
    }

    async fn create_sandbox(&self, id: &str) {
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/pause"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "annotations": {
                "io.kubernetes.cri.container-type": "sandbox",
                "io.kubernetes.cri.sandbox-id": id,
                "io.kubernetes.cri.sandbox-name": "web"
            }
        });
        self.service
            .create(self.request(id, spec))
            .await
            .expect("create sandbox");
        self.service
            .start(start_request(id))
            .await
            .expect("start sandbox");
    }

    async fn create_container(
        &self,
        id: &str,
        sandbox: Option<&str>,
        module: &str,
    ) -> Result<(), TaskError> {
        let mut spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": [module], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        });
        if let Some(sandbox) = sandbox {
            spec["annotations"] = serde_json::json!({
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-id": sandbox
            });
        }
        self.service.create(self.request(id, spec)).await.map(drop)
    }

    /// The events so far, as `(topic, container, exit status)`.
    fn events(&mut self) -> Vec<(&'static str, String, Option<u32>)> {
        let mut seen = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            let status = match &event {
                Event::Exit(e) => Some(e.exit_status),
                Event::Delete(e) => Some(e.exit_status),
                _ => None,
            };
            seen.push((event.topic(), event.container_id().to_owned(), status));
        }
        seen
    }

    async fn wait(&self, id: &str) -> u32 {
        self.wait_exec(id, "").await
    }

    /// Waits for exec `exec_id` of task `id` (the task's own process when empty) to end.
    async fn wait_exec(&self, id: &str, exec_id: &str) -> u32 {
        let waited = tokio::time::timeout(
            Duration::from_secs(5),
            self.service.wait(WaitRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..WaitRequest::default()
            }),
        )
        .await
        .expect("the process exits")
        .expect("wait");
        waited.exit_status
    }

    fn status(&self, id: &str) -> Status {
        self.service
            .state(StateRequest {
                id: id.into(),
                ..StateRequest::default()
            })
            .expect("state")
            .status
            .enum_value_or_default()
    }
}

fn start_request(id: &str) -> StartRequest {
    StartRequest {
        id: id.into(),
        ..StartRequest::default()
    }
}

fn kill_request(id: &str, signal: u32) -> KillRequest {
    KillRequest {
        id: id.into(),
        signal,
        ..KillRequest::default()
    }
}

fn delete_request(id: &str) -> DeleteRequest {
    DeleteRequest {
        id: id.into(),
        ..DeleteRequest::default()
    }
}

fn code(error: TaskError) -> Code {
    error.code()
}

const CREATE: &str = "/tasks/create";
const START: &str = "/tasks/start";
const EXIT: &str = "/tasks/exit";
const DELETE: &str = "/tasks/delete";
const OOM: &str = "/tasks/oom";

#[tokio::test]
async fn the_sandbox_runs_as_the_shim_until_killed() {
    let mut f = Fixture::new();
    f.create_sandbox("sb").await;
    assert_eq!(f.status("sb"), Status::RUNNING);
    let state = f
        .service
        .state(StateRequest {
            id: "sb".into(),
            ..StateRequest::default()
        })
        .expect("state");
    assert_eq!(state.pid, PID);
    assert_eq!(state.stdout, "/fifo/sb-out");
    let pids = f
        .service
        .pids(PidsRequest {
            id: "sb".into(),
            ..PidsRequest::default()
        })
        .expect("pids");
    assert_eq!(pids.processes.len(), 1);
    assert_eq!(pids.processes[0].pid, PID);

    f.service.kill(kill_request("sb", 9)).expect("kill");
    assert_eq!(f.wait("sb").await, EXIT_SIGKILL);
    assert_eq!(f.status("sb"), Status::STOPPED);
    let deleted = f
        .service
        .delete(delete_request("sb"))
        .await
        .expect("delete");
    assert_eq!(deleted.exit_status, EXIT_SIGKILL);
    assert_eq!(
        f.events(),
        [
            (CREATE, "sb".into(), None),
            (START, "sb".into(), None),
            (EXIT, "sb".into(), Some(137)),
            (DELETE, "sb".into(), Some(137)),
        ]
    );
    assert_eq!(
        f.stub().calls(),
        ["create_sandbox sb web", "delete_sandbox"]
    );
    assert!(!f.shutdown.is_cancelled());
    f.service.shutdown();
    assert!(f.shutdown.is_cancelled(), "no task left: the shim exits");
}

#[tokio::test]
async fn a_container_runs_in_the_sandbox_and_reports_its_exit_code() {
    let mut f = Fixture::with_pod().await;
    assert_eq!(f.status("c1"), Status::CREATED);
    f.service.start(start_request("c1")).await.expect("start");
    assert_eq!(f.status("c1"), Status::RUNNING);
    f.stub().end("c1", ExitStatus::exited(3));
    assert_eq!(f.wait("c1").await, 3);
    assert_eq!(f.status("c1"), Status::STOPPED);
    f.service
        .delete(delete_request("c1"))
        .await
        .expect("delete");

    // The sandbox stays: the shim does not exit while it is there.
    f.service.shutdown();
    assert!(!f.shutdown.is_cancelled());
    assert_eq!(f.status("sb"), Status::RUNNING);
    assert_eq!(
        f.stub().calls(),
        [
            "create_sandbox sb web",
            "create_container c1",
            "start c1",
            "remove c1"
        ]
    );
    let events: Vec<_> = f.events().into_iter().filter(|e| e.1 == "c1").collect();
    assert_eq!(
        events,
        [
            (CREATE, "c1".into(), None),
            (START, "c1".into(), None),
            (EXIT, "c1".into(), Some(3)),
            (DELETE, "c1".into(), Some(3)),
        ]
    );
}

#[tokio::test]
async fn sigterm_asks_for_a_graceful_stop_and_sigkill_hard_stops() {
    let f = Fixture::with_pod().await;
    f.service.start(start_request("c1")).await.expect("start");
    f.service.kill(kill_request("c1", 15)).expect("SIGTERM");
    // The graceful stop runs as its own task.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    assert_eq!(
        f.status("c1"),
        Status::RUNNING,
        "SIGTERM does not stop at once"
    );
    f.service.kill(kill_request("c1", 9)).expect("SIGKILL");
    assert_eq!(f.wait("c1").await, 137);
    let calls = f.stub().calls();
    assert!(
        calls.contains(&format!("stop c1 {}s", TERM_GRACE.as_secs())),
        "{calls:?}"
    );
    assert!(calls.contains(&"kill c1".to_owned()), "{calls:?}");
    // A signal to a stopped task is a no-op; signal 0 only checks the task exists.
    f.service.kill(kill_request("c1", 9)).expect("again");
    f.service.kill(kill_request("c1", 0)).expect("signal 0");
    let unsupported = f.service.kill(kill_request("sb", 10)).expect_err("SIGUSR1");
    assert_eq!(code(unsupported), Code::UNIMPLEMENTED);
}

#[tokio::test]
async fn killing_the_sandbox_kills_its_running_containers() {
    let f = Fixture::with_pod().await;
    f.service.start(start_request("c1")).await.expect("start");
    f.service.kill(kill_request("sb", 9)).expect("kill sandbox");
    assert_eq!(f.wait("c1").await, 137);
    assert_eq!(f.wait("sb").await, 137);
}

#[tokio::test]
async fn sigterm_to_the_sandbox_ends_it_like_pause() {
    let f = Fixture::new();
    f.create_sandbox("sb").await;
    f.service.kill(kill_request("sb", 15)).expect("SIGTERM");
    assert_eq!(f.wait("sb").await, 0);
}

#[tokio::test]
async fn an_oom_is_published_before_the_exit() {
    let mut f = Fixture::with_pod().await;
    f.service.start(start_request("c1")).await.expect("start");
    f.stub().end(
        "c1",
        ExitStatus {
            code: 137,
            reason: ExitReason::OOMKilled,
            message: None,
        },
    );
    assert_eq!(f.wait("c1").await, 137);
    let topics: Vec<_> = f
        .events()
        .into_iter()
        .filter(|e| e.1 == "c1")
        .map(|e| e.0)
        .collect();
    assert_eq!(topics, [CREATE, START, OOM, EXIT]);
}

#[tokio::test]
async fn a_container_without_a_sandbox_is_a_pod_of_its_own() {
    let f = Fixture::new();
    f.create_container("solo", None, "hello.wasm")
        .await
        .expect("create");
    f.service.start(start_request("solo")).await.expect("start");
    f.stub().end("solo", ExitStatus::exited(0));
    assert_eq!(f.wait("solo").await, 0);
    f.service
        .delete(delete_request("solo"))
        .await
        .expect("delete");
    assert_eq!(
        f.stub().calls(),
        [
            "create_sandbox solo solo",
            "create_container solo",
            "start solo",
            "remove solo",
            "delete_sandbox"
        ]
    );
    f.service.shutdown();
    assert!(f.shutdown.is_cancelled());
}

#[tokio::test]
async fn a_failed_create_leaves_the_sandbox_as_it_was() {
    let f = Fixture::new();
    f.create_sandbox("sb").await;
    let error = f
        .create_container("bad", Some("sb"), "/missing.wasm")
        .await
        .expect_err("missing module");
    assert_eq!(code(error), Code::NOT_FOUND);
    assert_eq!(f.status("sb"), Status::RUNNING);
    let unknown = f
        .service
        .state(StateRequest {
            id: "bad".into(),
            ..StateRequest::default()
        })
        .expect_err("never created");
    assert_eq!(code(unknown), Code::NOT_FOUND);
    assert!(!f.stub().calls().contains(&"delete_sandbox".to_owned()));
    // A container that was its own pod takes its sandbox along.
    let solo = Fixture::new();
    solo.create_container("bad", None, "/missing.wasm")
        .await
        .expect_err("missing module");
    assert_eq!(
        solo.stub().calls(),
        ["create_sandbox bad bad", "delete_sandbox"]
    );
}

#[tokio::test]
async fn bad_transitions_and_unsupported_calls_are_refused_with_their_codes() {
    let f = Fixture::with_pod().await;
    let twice = f
        .create_container("c1", Some("sb"), "/app.wasm")
        .await
        .expect_err("twice");
    assert_eq!(code(twice), Code::ALREADY_EXISTS);
    f.service.start(start_request("c1")).await.expect("start");
    let restart = f
        .service
        .start(start_request("c1"))
        .await
        .expect_err("restart");
    assert_eq!(code(restart), Code::FAILED_PRECONDITION);
    let running = f
        .service
        .delete(delete_request("c1"))
        .await
        .expect_err("running");
    assert_eq!(code(running), Code::FAILED_PRECONDITION);
    let exec = f
        .service
        .start(StartRequest {
            id: "c1".into(),
            exec_id: "e1".into(),
            ..StartRequest::default()
        })
        .await
        .expect_err("an exec that was never added");
    assert_eq!(code(exec), Code::NOT_FOUND);
    let into_sandbox = f
        .service
        .exec(exec_request("sb", "e1", &["ls"]))
        .expect_err("the sandbox runs no process");
    assert_eq!(code(into_sandbox), Code::UNIMPLEMENTED);
    let missing = f
        .service
        .kill(kill_request("nope", 9))
        .expect_err("no such task");
    assert_eq!(code(missing), Code::NOT_FOUND);
    let second_sandbox = f
        .service
        .create(f.request(
            "sb2",
            serde_json::json!({
                "ociVersion": "1.0.2",
                "process": {"args": ["/pause"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
                "annotations": {"io.kubernetes.cri.container-type": "sandbox"}
            }),
        ))
        .await
        .expect_err("one pod per shim");
    assert_eq!(code(second_sandbox), Code::INVALID_ARGUMENT);
}

#[tokio::test]
async fn stats_are_cgroup_v2_metrics() {
    let f = Fixture::with_pod().await;
    for (id, usec, memory) in [("c1", 3000, 1 << 20), ("sb", 7000, 5 << 20)] {
        let stats = f
            .service
            .stats(StatsRequest {
                id: id.into(),
                ..StatsRequest::default()
            })
            .expect("stats");
        let any = stats.stats.into_option().expect("metrics");
        assert_eq!(any.type_url, METRICS_TYPE_URL);
        let metrics = Metrics::parse_from_bytes(&any.value).expect("decode");
        assert_eq!(metrics.cpu.usage_usec, usec, "{id}");
        assert_eq!(metrics.memory.usage, memory, "{id}");
    }
    let connected = f
        .service
        .connect(ConnectRequest {
            id: "c1".into(),
            ..ConnectRequest::default()
        })
        .expect("connect");
    assert_eq!(connected.shim_pid, PID);
}

fn exec_request(id: &str, exec_id: &str, argv: &[&str]) -> ExecProcessRequest {
    let spec = serde_json::json!({"args": argv, "cwd": "/", "user": {"uid": 0, "gid": 0}});
    ExecProcessRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        stdout: format!("/fifo/{exec_id}-out"),
        spec: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: serde_json::to_vec(&spec).expect("json"),
            ..Any::default()
        }),
        ..ExecProcessRequest::default()
    }
}

fn exec_start(id: &str, exec_id: &str) -> StartRequest {
    StartRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        ..StartRequest::default()
    }
}

#[tokio::test]
async fn an_exec_runs_in_a_running_container_with_states_exit_and_events_of_its_own() {
    let mut f = Fixture::with_pod().await;
    // Not before the container runs.
    let early = f
        .service
        .exec(exec_request("c1", "e0", &["exit", "3"]))
        .expect_err("c1 is only created");
    assert_eq!(code(early), Code::FAILED_PRECONDITION);
    f.service
        .start(start_request("c1"))
        .await
        .expect("start c1");
    f.service
        .exec(exec_request("c1", "e1", &["exit", "3"]))
        .expect("exec");
    let again = f
        .service
        .exec(exec_request("c1", "e1", &["exit", "3"]))
        .expect_err("the exec id is taken");
    assert_eq!(code(again), Code::ALREADY_EXISTS);
    let state = |f: &Fixture| {
        f.service
            .state(StateRequest {
                id: "c1".into(),
                exec_id: "e1".into(),
                ..StateRequest::default()
            })
            .expect("state")
    };
    assert_eq!(state(&f).status.enum_value_or_default(), Status::CREATED);
    assert_eq!(state(&f).stdout, "/fifo/e1-out");
    f.service
        .start(exec_start("c1", "e1"))
        .await
        .expect("start exec");
    let waited = f.wait_exec("c1", "e1").await;
    assert_eq!(waited, 3);
    assert_eq!(state(&f).status.enum_value_or_default(), Status::STOPPED);
    // The container runs on.
    assert_eq!(f.status("c1"), Status::RUNNING);
    let deleted = f
        .service
        .delete(DeleteRequest {
            id: "c1".into(),
            exec_id: "e1".into(),
            ..DeleteRequest::default()
        })
        .await
        .expect("delete exec");
    assert_eq!(deleted.exit_status, 3);
    assert!(f.stub().calls().contains(&"exec c1 exit 3".to_owned()));
    let topics: Vec<_> = f
        .events()
        .into_iter()
        .filter(|(topic, ..)| topic.starts_with("/tasks/exec") || *topic == EXIT)
        .collect();
    assert_eq!(
        topics,
        [
            ("/tasks/exec-added", "c1".into(), None),
            ("/tasks/exec-started", "c1".into(), None),
            (EXIT, "c1".into(), Some(3)),
        ]
    );
}

#[tokio::test]
async fn killing_an_exec_ends_it_and_only_it() {
    let f = Fixture::with_pod().await;
    f.service
        .start(start_request("c1"))
        .await
        .expect("start c1");
    f.service
        .exec(exec_request("c1", "e1", &["hang"]))
        .expect("exec");
    f.service
        .start(exec_start("c1", "e1"))
        .await
        .expect("start exec");
    let busy = f
        .service
        .delete(DeleteRequest {
            id: "c1".into(),
            exec_id: "e1".into(),
            ..DeleteRequest::default()
        })
        .await
        .expect_err("a running exec is not deleted");
    assert_eq!(code(busy), Code::FAILED_PRECONDITION);
    f.service
        .kill(KillRequest {
            id: "c1".into(),
            exec_id: "e1".into(),
            signal: 9,
            ..KillRequest::default()
        })
        .expect("kill exec");
    let waited = f.wait_exec("c1", "e1").await;
    assert_eq!(waited, EXIT_SIGKILL);
    assert_eq!(f.status("c1"), Status::RUNNING);
}

#[tokio::test]
async fn update_sets_a_containers_limits_from_the_linux_resources_containerd_sends() {
    let f = Fixture::with_pod().await;
    let update = |id: &str, json: &str| UpdateTaskRequest {
        id: id.into(),
        resources: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
            value: json.as_bytes().to_vec(),
            ..Any::default()
        }),
        ..UpdateTaskRequest::default()
    };
    f.service
        .update(update(
            "c1",
            r#"{"memory":{"limit":134217728},"cpu":{"quota":50000,"period":100000}}"#,
        ))
        .expect("update");
    f.service
        .update(update("c1", r#"{"memory":{"limit":-1}}"#))
        .expect("unlimited");
    // The pod's own resources are its cgroup's, kubelet's business.
    f.service
        .update(update("sb", r#"{"memory":{"limit":1}}"#))
        .expect("sandbox");
    let calls = f.stub().calls();
    assert!(
        calls.contains(&"update c1 Some(134217728) Some(500)".to_owned()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"update c1 None None".to_owned()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("update sb")),
        "{calls:?}"
    );
    let bad = f
        .service
        .update(update("c1", "{not json"))
        .expect_err("bad");
    assert_eq!(code(bad), Code::INVALID_ARGUMENT);
}
