//! The shim's error type and its one mapping onto ttrpc status codes.
//!
//! Every task method returns [`TaskError`]; the ttrpc layer turns it into a status with the
//! single `From` impl below, so containerd (and through it CRI and kubelet) sees `NotFound`,
//! `InvalidArgument`, `FailedPrecondition`... exactly where the runtime meant them.

use std::path::PathBuf;

use containerd_shim::protos::ttrpc::{self, Code};
use wasmpod::ErrorKind;

/// Why a task request failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The runtime refused or failed (its [`ErrorKind`] picks the code).
    #[error(transparent)]
    Runtime(#[from] wasmpod::Error),
    /// No task by that id in this shim.
    #[error("task {id:?} not found")]
    NotFound {
        /// The task (container) id.
        id: String,
    },
    /// A task by that id exists already.
    #[error("task {id:?} already exists")]
    AlreadyExists {
        /// The task (container) id.
        id: String,
    },
    /// The bundle's OCI spec asks for something wasmpod cannot do, or is malformed.
    #[error("container {id:?}: {message}")]
    InvalidSpec {
        /// The task (container) id.
        id: String,
        /// What is wrong, lowercase.
        message: String,
    },
    /// The module `process.args[0]` names is not in the container's rootfs, and its image has
    /// no Wasm layer.
    #[error(
        "container {id:?}: module {module:?} not found in the image (looked at {path}, and for a Wasm layer)"
    )]
    ModuleNotFound {
        /// The task (container) id.
        id: String,
        /// `process.args[0]` as given.
        module: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The task's state does not allow the request.
    #[error("task {id:?} is {state}: cannot {op}")]
    BadState {
        /// The task (container) id.
        id: String,
        /// Its state.
        state: &'static str,
        /// What was asked.
        op: &'static str,
    },
    /// A request wasmpod does not implement (exec, checkpoint, pty resize...).
    #[error("{what} is not supported by wasmpod")]
    Unimplemented {
        /// What was asked.
        what: String,
    },
    /// A host operation of the shim itself failed (opening a FIFO, mounting the rootfs).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// What it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The rootfs could not be mounted or unmounted.
    #[error("rootfs {path}: {message}")]
    Mount {
        /// The bundle's rootfs.
        path: PathBuf,
        /// containerd-shim's explanation.
        message: String,
    },
}

impl TaskError {
    /// The ttrpc code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            TaskError::Runtime(e) => match e.kind() {
                ErrorKind::NotFound => Code::NOT_FOUND,
                ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
                ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
                ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
                ErrorKind::ResourceExhausted => Code::RESOURCE_EXHAUSTED,
                ErrorKind::DeadlineExceeded => Code::DEADLINE_EXCEEDED,
                ErrorKind::Internal => Code::INTERNAL,
            },
            TaskError::NotFound { .. } | TaskError::ModuleNotFound { .. } => Code::NOT_FOUND,
            TaskError::AlreadyExists { .. } => Code::ALREADY_EXISTS,
            TaskError::InvalidSpec { .. } => Code::INVALID_ARGUMENT,
            TaskError::BadState { .. } => Code::FAILED_PRECONDITION,
            TaskError::Unimplemented { .. } => Code::UNIMPLEMENTED,
            TaskError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Code::NOT_FOUND
            }
            TaskError::Io { .. } | TaskError::Mount { .. } => Code::INTERNAL,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TaskError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unimplemented(what: impl Into<String>) -> Self {
        TaskError::Unimplemented { what: what.into() }
    }
}

/// The one place shim errors become ttrpc statuses: the code from [`TaskError::code`], the
/// message the whole error chain on one line.
impl From<TaskError> for ttrpc::Error {
    fn from(error: TaskError) -> Self {
        let code = error.code();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use wasmpod::pod::PodError;

    use super::*;

    fn status(error: TaskError) -> (Code, String) {
        match ttrpc::Error::from(error) {
            ttrpc::Error::RpcStatus(status) => (status.code(), status.message().to_owned()),
            other => panic!("not a status: {other:?}"),
        }
    }

    fn runtime(error: impl Into<wasmpod::Error>) -> TaskError {
        TaskError::Runtime(error.into())
    }

    #[test]
    fn not_found() {
        let (code, message) = status(TaskError::NotFound { id: "c1".into() });
        assert_eq!(code, Code::NOT_FOUND);
        assert_eq!(message, r#"task "c1" not found"#);
        let (code, _) = status(TaskError::ModuleNotFound {
            id: "c1".into(),
            module: "/app.wasm".into(),
            path: "/bundle/rootfs/app.wasm".into(),
        });
        assert_eq!(code, Code::NOT_FOUND);
        let missing = runtime(PodError::NotFound {
            pod: "p".into(),
            name: "c".into(),
        });
        assert_eq!(status(missing).0, Code::NOT_FOUND);
        let io = TaskError::io("open", "/x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(status(io).0, Code::NOT_FOUND);
    }

    #[test]
    fn already_exists() {
        assert_eq!(
            status(TaskError::AlreadyExists { id: "c1".into() }).0,
            Code::ALREADY_EXISTS
        );
        let exists = runtime(PodError::AlreadyExists {
            pod: "p".into(),
            name: "c".into(),
        });
        assert_eq!(status(exists).0, Code::ALREADY_EXISTS);
    }

    #[test]
    fn invalid_argument() {
        let (code, message) = status(TaskError::InvalidSpec {
            id: "c1".into(),
            message: "process.args is empty".into(),
        });
        assert_eq!(code, Code::INVALID_ARGUMENT);
        assert_eq!(message, r#"container "c1": process.args is empty"#);
        let bad = runtime(wasmpod::SpecError::new("spec.x", "bad"));
        assert_eq!(status(bad).0, Code::INVALID_ARGUMENT);
    }

    #[test]
    fn failed_precondition() {
        let (code, message) = status(TaskError::BadState {
            id: "c1".into(),
            state: "running",
            op: "delete",
        });
        assert_eq!(code, Code::FAILED_PRECONDITION);
        assert_eq!(message, r#"task "c1" is running: cannot delete"#);
        let deleted = runtime(PodError::Deleted { pod: "p".into() });
        assert_eq!(status(deleted).0, Code::FAILED_PRECONDITION);
    }

    #[test]
    fn deadline_exceeded() {
        let late = runtime(wasmpod::Error::Timeout {
            pod: "p".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(status(late).0, Code::DEADLINE_EXCEEDED);
    }

    #[test]
    fn resource_exhausted() {
        let admission = wasmpod::admission::AdmissionError {
            pod: "p".into(),
            requested: Default::default(),
            free: Default::default(),
            capacity: Default::default(),
        };
        assert_eq!(status(runtime(admission)).0, Code::RESOURCE_EXHAUSTED);
    }

    #[test]
    fn unimplemented() {
        let (code, message) = status(TaskError::unimplemented("exec"));
        assert_eq!(code, Code::UNIMPLEMENTED);
        assert_eq!(message, "exec is not supported by wasmpod");
    }

    #[test]
    fn internal() {
        let io = TaskError::io("open", "/x", io::Error::other("boom"));
        let (code, message) = status(io);
        assert_eq!(code, Code::INTERNAL);
        assert_eq!(message, "open /x: boom");
        let mount = TaskError::Mount {
            path: "/b/rootfs".into(),
            message: "busy".into(),
        };
        assert_eq!(status(mount).0, Code::INTERNAL);
    }
}
