//! Task events for containerd (`/tasks/create`, `/tasks/start`, `/tasks/exit`,
//! `/tasks/delete`, `/tasks/oom`, `/tasks/exec-added`, `/tasks/exec-started`): the task service emits [`Event`]s on a channel, and one
//! forwarding loop publishes them, in order, to containerd's event service.

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::topics;
use containerd_shim::publisher::RemotePublisher;
use tokio::sync::mpsc;

/// One task event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A task was created.
    Create(TaskCreate),
    /// A task started.
    Start(TaskStart),
    /// A task's process (its guest) exited.
    Exit(TaskExit),
    /// A task was deleted.
    Delete(TaskDelete),
    /// A task's guest hit its memory limit (published before its exit, so CRI reports
    /// `OOMKilled`).
    Oom(TaskOOM),
    /// A process was added to a task (`Exec`).
    ExecAdded(TaskExecAdded),
    /// An exec'd process started.
    ExecStarted(TaskExecStarted),
}

impl Event {
    /// The topic containerd files it under.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::Create(_) => topics::TASK_CREATE_EVENT_TOPIC,
            Event::Start(_) => topics::TASK_START_EVENT_TOPIC,
            Event::Exit(_) => topics::TASK_EXIT_EVENT_TOPIC,
            Event::Delete(_) => topics::TASK_DELETE_EVENT_TOPIC,
            Event::Oom(_) => topics::TASK_OOM_EVENT_TOPIC,
            Event::ExecAdded(_) => topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Event::ExecStarted(_) => topics::TASK_EXEC_STARTED_EVENT_TOPIC,
        }
    }

    /// The container the event is about.
    pub fn container_id(&self) -> &str {
        match self {
            Event::Create(e) => &e.container_id,
            Event::Start(e) => &e.container_id,
            Event::Exit(e) => &e.container_id,
            Event::Delete(e) => &e.container_id,
            Event::Oom(e) => &e.container_id,
            Event::ExecAdded(e) => &e.container_id,
            Event::ExecStarted(e) => &e.container_id,
        }
    }

    fn into_message(self) -> Box<dyn MessageDyn> {
        match self {
            Event::Create(e) => Box::new(e),
            Event::Start(e) => Box::new(e),
            Event::Exit(e) => Box::new(e),
            Event::Delete(e) => Box::new(e),
            Event::Oom(e) => Box::new(e),
            Event::ExecAdded(e) => Box::new(e),
            Event::ExecStarted(e) => Box::new(e),
        }
    }
}

/// Publishes every event from `events` to containerd under `namespace`, in order, until the
/// channel closes. A failed publish is logged and the next event goes on.
pub async fn forward(
    publisher: RemotePublisher,
    namespace: String,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    while let Some(event) = events.recv().await {
        let topic = event.topic();
        let id = event.container_id().to_owned();
        let context = containerd_shim::Context::default();
        if let Err(error) = publisher
            .publish(context, topic, &namespace, event.into_message())
            .await
        {
            tracing::warn!(topic, container = id, %error, "cannot publish event");
        }
    }
}

/// A protobuf timestamp of `at`.
pub fn timestamp(at: jiff::Timestamp) -> Timestamp {
    Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
        ..Timestamp::default()
    }
}
