//! The runtime's error type: one `thiserror` enum per fallible module, collected here.
//!
//! Every error has a [`ErrorKind`], modelled on the gRPC status codes that CRI and the shim
//! speak, so front ends map errors to exit codes or ttrpc codes in one place.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is; front ends map it to exit codes or RPC codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A named object (container, pod, file) does not exist.
    NotFound,
    /// An object with that name already exists.
    AlreadyExists,
    /// The caller's input is wrong (a manifest field, a module that is not wasm).
    InvalidArgument,
    /// The object is not in a state that allows the operation (e.g. starting a running container).
    FailedPrecondition,
    /// A limit was hit (node capacity, pool slots).
    ResourceExhausted,
    /// The operation did not finish in time.
    DeadlineExceeded,
    /// Something failed inside the runtime or the host.
    Internal,
}

/// The runtime's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is invalid; the path names the offending field.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// A module could not be read, detected or compiled.
    #[error(transparent)]
    Image(#[from] crate::engine::ImageError),
    /// A container's module (named by manifest field `field`) could not be loaded; the kind
    /// is the image error's.
    #[error("{field}: {image}")]
    ImageOf {
        /// The manifest field naming the module, e.g. `spec.containers[0].image`.
        field: String,
        /// What went wrong (already in the message: not chained as a source, so an error
        /// report prints it once).
        image: crate::engine::ImageError,
    },
    /// A volume could not be prepared.
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    /// The host layer (cgroup, network namespace) failed.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// The pod does not fit the node.
    #[error(transparent)]
    Admission(#[from] crate::admission::AdmissionError),
    /// A lifecycle verb was refused.
    #[error(transparent)]
    Pod(#[from] crate::pod::PodError),
    /// A pod did not end within the time its caller gave it (it was killed).
    #[error("pod {pod:?} did not end within {after:?}; it was killed")]
    Timeout {
        /// The pod.
        pod: String,
        /// The time it had.
        after: std::time::Duration,
    },
    /// The engine could not be configured.
    #[error("engine: {0:#}")]
    Engine(wasmtime::Error),
    /// A host file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "create directory".
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Spec(_) => ErrorKind::InvalidArgument,
            Error::Image(e) | Error::ImageOf { image: e, .. } => e.kind(),
            Error::Volume(e) => e.kind(),
            Error::Pod(e) => e.kind(),
            Error::Admission(e) => e.kind(),
            Error::Host(e) => e.kind(),
            Error::Timeout { .. } => ErrorKind::DeadlineExceeded,
            Error::Engine(_) => ErrorKind::Internal,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
