//! Manifest → [`PodSpec`]: an ordinary Kubernetes `v1` Pod, validated into the runtime's own types.
//!
//! Parsing goes YAML/JSON → [`k8s_openapi::api::core::v1::Pod`] → [`PodSpec`]. Every field that
//! is set and that wasmpod does not implement is an error naming its path
//! (`spec.containers[1].securityContext.privileged: not supported by wasmpod`); fields that only
//! the scheduler or the API server act on are accepted and logged at debug; fields Kubernetes does
//! not know are errors too (`unknown field`), as with `kubectl apply --validate=strict`.

mod parse;
mod quantity;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::{Manifest, parse_manifest, parse_manifest_file, parse_pod, parse_pod_file};
pub use quantity::{parse_cpu_millis, parse_memory_bytes};

/// A manifest error: the document of a multi-document file it is in (`document 2 (ConfigMap
/// "settings")`), the field path (`spec.containers[0].image`) and what is wrong with it, on
/// one line: `document 2 (ConfigMap "settings"): data: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.line())]
pub struct SpecError {
    /// Which document of a file with several; empty for a file of one.
    pub document: String,
    /// The path of the offending field, as kubectl prints it; empty for whole-document errors.
    pub path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl SpecError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            document: String::new(),
            path: path.into(),
            message: message.into(),
        }
    }

    /// This error, said to be in `document`.
    pub fn in_document(mut self, document: impl Into<String>) -> Self {
        self.document = document.into();
        self
    }

    /// `document: path: message`, the empty parts left out.
    fn line(&self) -> String {
        [
            self.document.as_str(),
            self.path.as_str(),
            self.message.as_str(),
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
    }
}

/// A validated pod: what the runtime runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, `default` when unset.
    pub namespace: String,
    /// `metadata.uid`; generated when the manifest has none.
    pub uid: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `spec.hostname`, else the pod's name: every container sees it as `HOSTNAME`.
    pub hostname: String,
    /// `spec.initContainers`, run one at a time in order.
    pub init_containers: Vec<ContainerSpec>,
    /// `spec.containers`, started together once every init container succeeded.
    pub containers: Vec<ContainerSpec>,
    /// `spec.volumes`.
    pub volumes: Vec<VolumeSpec>,
    /// `spec.restartPolicy`, `Always` when unset.
    pub restart_policy: RestartPolicy,
    /// `spec.terminationGracePeriodSeconds`, 30 s when unset.
    pub termination_grace_period: Duration,
    /// `spec.activeDeadlineSeconds`.
    pub active_deadline: Option<Duration>,
}

impl PodSpec {
    /// The volume named `name`.
    pub fn volume(&self, name: &str) -> Option<&VolumeSpec> {
        self.volumes.iter().find(|v| v.name == name)
    }
}

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Restart whatever the exit code (the Kubernetes default).
    #[default]
    Always,
    /// Restart only on a non-zero exit.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// Whether a container that exited with `exit_code` is restarted under this policy.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }

    /// The name Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }
}

/// One validated container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// `name`, unique across init and app containers of the pod.
    pub name: String,
    /// `image` as written in the manifest.
    pub image: String,
    /// The `.wasm` file `image` names, resolved against the manifest's directory.
    pub module: PathBuf,
    /// The image's root filesystem, when the module comes from one (the shim's bundle):
    /// `module` is then a path inside it, resolved beneath it, so a link in the image never
    /// leads the runtime to a host file.
    pub rootfs: Option<PathBuf>,
    /// The rootfs is preopened read-only (the bundle's `root.readonly`).
    pub read_only_rootfs: bool,
    /// The guest's argv: `command` (or the module's file name when `command` is empty, as an
    /// image's entrypoint would be) followed by `args`, with `$(VAR)` references expanded.
    pub argv: Vec<String>,
    /// Environment in declaration order, `valueFrom.fieldRef` resolved and `$(VAR)` expanded.
    pub env: Vec<(String, String)>,
    /// `workingDir`, an absolute guest path.
    pub working_dir: Option<String>,
    /// `volumeMounts`.
    pub mounts: Vec<MountSpec>,
    /// `resources`.
    pub resources: Resources,
    /// `ports[].containerPort`: informational, as in Kubernetes.
    pub ports: Vec<u16>,
    /// `lifecycle.postStart`: run once the guest started; until it completes the container
    /// is not started (its probes wait, a sidecar holds back the next init container); its
    /// failure kills the container (`FailedPostStartHook`).
    pub post_start: Option<Handler>,
    /// `lifecycle.preStop`: run before the termination request; its time counts against the
    /// grace period; its failure is logged and termination goes on.
    pub pre_stop: Option<Handler>,
    /// An init container with `restartPolicy: Always`, a native sidecar: started in order
    /// with the init containers (the next one waits until it is started), then kept running
    /// and restarted whatever its exit, and stopped after the app containers, in reverse order.
    pub sidecar: bool,
    /// `startupProbe`, `livenessProbe` and `readinessProbe`.
    pub probes: Probes,
}

/// A container's probes, which the runner runs as kubelet runs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// `startupProbe`: until it succeeds the others do not run and the container is not
    /// started; past its failure threshold the container is restarted.
    pub startup: Option<Probe>,
    /// `livenessProbe`: past its failure threshold the container is restarted.
    pub liveness: Option<Probe>,
    /// `readinessProbe`: the container is ready while it succeeds.
    pub readiness: Option<Probe>,
}

/// One probe with its timing, Kubernetes' defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What is checked.
    pub action: Handler,
    /// `initialDelaySeconds` (default 0): from the container's start (or its startup probe's
    /// success) to the first check.
    pub initial_delay: Duration,
    /// `periodSeconds` (default 10): from one check to the next.
    pub period: Duration,
    /// `timeoutSeconds` (default 1): a check that takes longer failed.
    pub timeout: Duration,
    /// `successThreshold` (default 1; 1 for liveness and startup probes): consecutive successes
    /// after a failure to count as passing.
    pub success_threshold: u32,
    /// `failureThreshold` (default 3): consecutive failures to count as failed.
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of a liveness or startup probe: the grace period of the
    /// restart it causes, in place of the pod's.
    pub termination_grace_period: Option<Duration>,
}

/// What kubelet runs for a probe or a lifecycle hook (its `ProbeHandler` and
/// `LifecycleHandler`), against the container, inside the pod (kubelet reaches the pod's IP;
/// here the pod's loopback, where a guest's wildcard or loopback listener answers). Probes
/// take `exec`, `httpGet`, `tcpSocket` and `grpc`; hooks `exec`, `httpGet` and `sleep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// `exec.command`: run in the container as `kubectl exec` runs it; exit 0 passes.
    Exec {
        /// The command.
        argv: Vec<String>,
    },
    /// `httpGet`: a GET answered with a status from 200 to 399 passes.
    HttpGet(HttpGet),
    /// `tcpSocket`: a connection accepted passes.
    TcpSocket {
        /// `port`, a named one resolved against the container's ports.
        port: u16,
    },
    /// `grpc`: the gRPC health checking protocol's `Check` answered `SERVING` passes.
    Grpc {
        /// `port`.
        port: u16,
        /// `service` (default empty: the server's overall health).
        service: String,
    },
    /// `sleep.seconds`: a pause (hooks only).
    Sleep(Duration),
}

/// An `httpGet` handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGet {
    /// `port`, a named one resolved against the container's ports.
    pub port: u16,
    /// `path` (default `/`).
    pub path: String,
    /// `scheme: HTTPS` (the certificate is not verified, as kubelet does not).
    pub https: bool,
    /// `httpHeaders`, in order.
    pub headers: Vec<(String, String)>,
}

impl ContainerSpec {
    /// A container running `module`: `argv` is the module's file name alone (as an image's
    /// entrypoint), no env, mounts, limits or hooks.
    pub fn new(name: impl Into<String>, module: impl Into<PathBuf>) -> Self {
        let module = module.into();
        let argv0 = module.file_name().map_or_else(
            || module.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        ContainerSpec {
            name: name.into(),
            image: module.display().to_string(),
            module,
            rootfs: None,
            read_only_rootfs: false,
            argv: vec![argv0],
            env: Vec::new(),
            working_dir: None,
            mounts: Vec::new(),
            resources: Resources::default(),
            ports: Vec::new(),
            post_start: None,
            pre_stop: None,
            sidecar: false,
            probes: Probes::default(),
        }
    }
}

/// One `volumeMounts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The volume's name (declared in `spec.volumes`).
    pub volume: String,
    /// Absolute guest path the volume is preopened at (`/` allowed).
    pub mount_path: String,
    /// `readOnly`.
    pub read_only: bool,
    /// `subPath`: a relative path inside the volume, without `..`.
    pub sub_path: Option<String>,
}

/// `resources` of a container, already parsed from Kubernetes quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// `requests.memory` in bytes (Kubernetes defaults a missing request to the limit).
    pub memory_request: Option<u64>,
    /// `limits.memory` in bytes.
    pub memory_limit: Option<u64>,
    /// `requests.cpu` in millicores (defaults to the limit).
    pub cpu_request: Option<u64>,
    /// `limits.cpu` in millicores.
    pub cpu_limit: Option<u64>,
}

/// One `spec.volumes` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// `name`.
    pub name: String,
    /// Where the volume's data comes from.
    pub source: VolumeSource,
}

/// The supported volume sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// `emptyDir`: a fresh directory that lives as long as the pod.
    EmptyDir {
        /// `medium: Memory` puts it on a tmpfs.
        memory: bool,
        /// `sizeLimit` in bytes.
        size_limit: Option<u64>,
    },
    /// `hostPath`: a directory of the host.
    HostPath {
        /// `path`, absolute.
        path: PathBuf,
        /// `type`.
        kind: HostPathType,
    },
    /// `configMap` and `secret`: a directory of files projected from the manifest's
    /// ConfigMaps and Secrets, made when the pod starts, read-only in every container that
    /// mounts it (as Kubernetes mounts them).
    Projected {
        /// The files, by relative path.
        files: Vec<ProjectedFile>,
        /// On a tmpfs (a Secret's, as kubelet keeps them off disk).
        memory: bool,
    },
}

/// One file of a [`VolumeSource::Projected`] volume.
#[derive(Clone, PartialEq, Eq)]
pub struct ProjectedFile {
    /// Where it goes in the volume: relative, plain components only.
    pub path: PathBuf,
    /// Its contents.
    pub contents: Vec<u8>,
    /// Its permission bits (`defaultMode`, an item's `mode`).
    pub mode: u32,
}

impl std::fmt::Debug for ProjectedFile {
    /// The contents may be a Secret's: only their size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectedFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// `hostPath.type`; wasmpod preopens directories, so only directory types are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostPathType {
    /// `""`: no check before mounting (the path must still be a directory).
    #[default]
    Unset,
    /// `Directory`: must exist.
    Directory,
    /// `DirectoryOrCreate`: created (mode 0755) when missing.
    DirectoryOrCreate,
}
