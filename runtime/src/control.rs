//! Pods managed from another terminal, without a daemon.
//!
//! A pod process ([`PodProcess::run_to_end`](crate::runner::PodProcess::run_to_end), what
//! `wasmpod run` runs, detached or not) keeps two things in its pod directory:
//! - its **record** ([`PodRecord`], `pod.json`): the pod as `kubectl get pod -o json` shows it
//!   (metadata and status), plus its process and kubectl's columns; rewritten (atomically) on
//!   every status change and once more, final, after the process tore down its host layer;
//! - its **control socket** (`control.sock`, owner-only, in the owner-only pod directory):
//!   a client sends one JSON line ([`Request`]) and the answer is one JSON line; a `stop`
//!   connection stays open until the pod process has ended and written its final record, so
//!   its end (EOF) is the client's "stopped".
//!
//! `wasmpod ps`, `stop` and `rm` find pods by reading the records under the state directory
//! ([`list`], [`find`]).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::error::ErrorKind;
use crate::pod::PodDir;
use crate::runner::Shutdown;
use crate::spec::PodSpec;
use crate::status::PodStatus;

/// A pod process's record of itself: a `v1` Pod (what `kubectl get pod -o json` prints, so
/// `wasmpod ps -o json` is a `kind: List` of them) plus `wasmpod`, its process and kubectl's
/// columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    /// `v1`.
    pub api_version: String,
    /// `Pod`.
    pub kind: String,
    /// Who the pod is.
    pub metadata: RecordMetadata,
    /// Its `v1` `PodStatus`, as [`PodStatus::to_json`] gives it.
    pub status: serde_json::Value,
    /// What kubectl's columns show, and the process.
    pub wasmpod: ProcessRecord,
}

/// `metadata` of a [`PodRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordMetadata {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// When the pod process started the pod.
    pub creation_timestamp: Timestamp,
}

/// The `wasmpod` part of a [`PodRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRecord {
    /// The pod process.
    pub pid: u32,
    /// When the kernel started it (`/proc/PID/stat`'s `starttime`, clock ticks since boot):
    /// with the pid, tells it from a later process that got the same pid.
    pub pid_start: u64,
    /// kubectl's READY: `ready/total`.
    pub ready: String,
    /// kubectl's STATUS.
    pub summary: String,
    /// kubectl's RESTARTS.
    pub restarts: u32,
    /// The phase.
    pub phase: String,
    /// The record is final: the process ended the pod and tore down its host layer.
    pub ended: bool,
}

impl PodRecord {
    /// The record of pod `spec` with `status`, held by this process.
    pub fn new(spec: &PodSpec, created: Timestamp, status: &PodStatus, ended: bool) -> Self {
        let pid = std::process::id();
        let (ready, total) = status.ready();
        PodRecord {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: RecordMetadata {
                name: spec.name.clone(),
                namespace: spec.namespace.clone(),
                uid: spec.uid.clone(),
                creation_timestamp: created,
            },
            status: status.to_json(),
            wasmpod: ProcessRecord {
                pid,
                pid_start: process_start(pid).unwrap_or_default(),
                ready: format!("{ready}/{total}"),
                summary: status.summary(),
                restarts: status.restarts(),
                phase: status.phase.as_str().to_owned(),
                ended,
            },
        }
    }

    /// Whether the pod process still runs: its record is not final and its process (that
    /// very one, not a later one with its pid) is alive.
    pub fn is_running(&self) -> bool {
        !self.wasmpod.ended
            && process_start(self.wasmpod.pid).is_some_and(|start| start == self.wasmpod.pid_start)
    }

    /// kubectl's STATUS: the record's, or `Unknown` for a pod whose process died without
    /// ending it (killed, crashed).
    pub fn summary(&self) -> &str {
        if self.wasmpod.ended || self.is_running() {
            &self.wasmpod.summary
        } else {
            "Unknown"
        }
    }

    /// Writes the record into `dir`, atomically (a reader never sees half of it). Blocking.
    pub fn write(&self, dir: &PodDir) -> std::io::Result<()> {
        let path = dir.record();
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)
    }

    /// The record in `dir`. Blocking.
    pub fn read(dir: &PodDir) -> std::io::Result<Self> {
        let text = std::fs::read(dir.record())?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

/// `/proc/PID/stat`'s `starttime` of process `pid`; `None` when there is no such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// A pod found under a state directory.
#[derive(Debug, Clone)]
pub struct FoundPod {
    /// Its directory.
    pub dir: PodDir,
    /// Its latest record.
    pub record: PodRecord,
}

/// Every pod with a record under `state_dir`, oldest first. Directories without a readable
/// record (a pod being prepared, another tool's) are skipped. Blocking.
pub fn list(state_dir: &Path) -> Vec<FoundPod> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut pods: Vec<FoundPod> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| {
            let dir = PodDir::new(entry.path());
            let record = PodRecord::read(&dir).ok()?;
            Some(FoundPod { dir, record })
        })
        .collect();
    pods.sort_by(|a, b| {
        (
            a.record.metadata.creation_timestamp,
            &a.record.metadata.name,
        )
            .cmp(&(
                b.record.metadata.creation_timestamp,
                &b.record.metadata.name,
            ))
    });
    pods
}

/// Pod `name` of `namespace` under `state_dir`. Blocking.
pub fn find(state_dir: &Path, namespace: &str, name: &str) -> Result<FoundPod, ControlError> {
    list(state_dir)
        .into_iter()
        .find(|pod| pod.record.metadata.name == name && pod.record.metadata.namespace == namespace)
        .ok_or_else(|| ControlError::NotFound {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        })
}

/// What a control client asks a pod process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    /// Terminate the pod as on deletion: every container's preStop hook and termination
    /// request, then, after `grace_period_seconds` (default: the pod's own grace period), a
    /// hard stop of what still runs. The answer comes at once; the connection ends when the
    /// process has ended and written its final record.
    Stop {
        /// Overrides the pod's grace period; `0` kills at once.
        grace_period_seconds: Option<u64>,
    },
}

/// A pod process's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    /// Done (for `stop`: begun).
    Ok,
    /// Refused, with why.
    Error(String),
}

/// A control request that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No pod of that name has a record.
    #[error("pod {name:?} not found in namespace {namespace:?}")]
    NotFound {
        /// The name asked for.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// Talking to the pod process failed.
    #[error("pod {name:?}: control socket {}: {source}", path.display())]
    Io {
        /// The pod.
        name: String,
        /// Its control socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The pod process refused the request.
    #[error("pod {name:?}: {message}")]
    Refused {
        /// The pod.
        name: String,
        /// Its answer.
        message: String,
    },
}

impl ControlError {
    /// What kind of failure this is: the pod not found or refusing is the caller's
    /// ([`ErrorKind::NotFound`], [`ErrorKind::FailedPrecondition`]), a socket failing ours.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::NotFound { .. } => ErrorKind::NotFound,
            ControlError::Refused { .. } => ErrorKind::FailedPrecondition,
            ControlError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Stops `pod` (see [`Request::Stop`]) and waits until its process has ended; returns its
/// final record (`None` when the pod removed its directory as it ended, `wasmpod run --rm`).
/// A pod that does not run is left as it is. Blocking.
pub fn stop(pod: &FoundPod, grace: Option<Duration>) -> Result<Option<PodRecord>, ControlError> {
    let name = pod.record.metadata.name.clone();
    if !pod.record.is_running() {
        return Ok(Some(pod.record.clone()));
    }
    let path = pod.dir.control_socket();
    let io = |source| ControlError::Io {
        name: name.clone(),
        path: path.clone(),
        source,
    };
    let stream = std::os::unix::net::UnixStream::connect(&path).map_err(io)?;
    let request = Request::Stop {
        grace_period_seconds: grace.map(|g| g.as_secs()),
    };
    let mut line = serde_json::to_string(&request).map_err(|e| io(std::io::Error::other(e)))?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(&stream);
    let mut answer = String::new();
    // No answer (EOF, a reset): the process was ending already.
    if reader.read_line(&mut answer).is_ok() && !answer.is_empty() {
        match serde_json::from_str::<Response>(&answer) {
            Ok(Response::Ok) => {}
            Ok(Response::Error(message)) => return Err(ControlError::Refused { name, message }),
            Err(e) => return Err(io(std::io::Error::other(e))),
        }
        // The process holds the connection until it has ended: EOF (or a reset) is its end.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
    }
    match PodRecord::read(&pod.dir) {
        Ok(record) => Ok(Some(record)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Removes a pod that does not run any more: its directory and its `medium: Memory`
/// emptyDirs. Blocking.
pub fn remove(pod: &FoundPod) -> Result<(), ControlError> {
    let name = pod.record.metadata.name.clone();
    if pod.record.is_running() {
        return Err(ControlError::Refused {
            name,
            message: "the pod is running: stop it first (or force the removal)".into(),
        });
    }
    let io = |path: &Path, source| ControlError::Io {
        name: name.clone(),
        path: path.to_owned(),
        source,
    };
    // What a pod process that died left on the host (its cgroup, its veth) goes first.
    if let Some(state_dir) = pod.dir.path().parent() {
        crate::host::recover(state_dir);
    }
    for dir in pod.dir.memory_empty_dirs() {
        crate::hostdir::remove_tree(&dir).map_err(|e| io(&dir, e))?;
    }
    crate::hostdir::remove_tree(pod.dir.path()).map_err(|e| io(pod.dir.path(), e))
}

/// The control socket of a pod process, bound (owner-only) before the pod runs.
#[derive(Debug)]
pub struct ControlSocket {
    dir: PodDir,
    listener: std::os::unix::net::UnixListener,
    /// Connections held open until the process has ended (their end tells the client).
    held: Arc<Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl ControlSocket {
    /// Binds `dir`'s control socket, owner-only. A socket a dead process left is replaced.
    pub fn bind(dir: &PodDir) -> std::io::Result<Self> {
        let path = dir.control_socket();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = std::os::unix::net::UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            dir: dir.clone(),
            listener,
            held: Arc::default(),
        })
    }

    /// Ends the pod process's publication: writes the final record (`status`, ended) unless
    /// the directory was removed, removes the socket, and lets every held connection end.
    /// Blocking.
    pub fn close(self, spec: &PodSpec, created: Timestamp, status: &PodStatus, removed: bool) {
        if !removed {
            if let Err(error) = PodRecord::new(spec, created, status, true).write(&self.dir) {
                tracing::warn!(%error, "cannot record the pod's end");
            }
            let _ = std::fs::remove_file(self.dir.control_socket());
        }
        // Dropping `self` ends the held connections: their clients see the end.
    }

    /// Serves requests until the runtime ends; `shutdown` is what a `stop` pulls.
    pub fn serve(&self, shutdown: Shutdown) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let listener = tokio::net::UnixListener::from_std(self.listener.try_clone()?)?;
        let held = self.held.clone();
        Ok(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(answer(stream, shutdown.clone(), held.clone()));
            }
        }))
    }
}

/// Answers one connection's request.
async fn answer(
    stream: tokio::net::UnixStream,
    shutdown: Shutdown,
    held: Arc<Mutex<Vec<std::os::unix::net::UnixStream>>>,
) {
    let mut stream = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    if stream.read_line(&mut line).await.is_err() {
        return;
    }
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Stop {
            grace_period_seconds,
        }) => {
            tracing::info!(grace = ?grace_period_seconds, "stop requested");
            match grace_period_seconds {
                Some(0) => shutdown.kill(),
                _ => shutdown.terminate(),
            }
            if let Some(seconds) = grace_period_seconds.filter(|s| *s > 0) {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                    shutdown.kill();
                });
            }
            Response::Ok
        }
        Err(e) => Response::Error(format!("bad request: {e}")),
    };
    let mut answer = serde_json::to_string(&response).unwrap_or_default();
    answer.push('\n');
    let mut stream = stream.into_inner();
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    if response == Response::Ok
        && let Ok(stream) = stream.into_std()
    {
        held.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PodSpec {
        crate::spec::parse_pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers:\n  - {name: app, image: app.wasm}\n",
            Path::new("/pods"),
        )
        .expect("manifest")
    }

    #[test]
    fn a_record_round_trips_and_knows_its_process() {
        let state = tempfile::tempdir().expect("tempdir");
        let spec = spec();
        let dir = PodDir::for_pod(state.path(), &spec);
        std::fs::create_dir_all(dir.path()).expect("pod dir");
        let status = PodStatus::new(&spec);
        let record = PodRecord::new(&spec, Timestamp::now(), &status, false);
        record.write(&dir).expect("write");
        assert_eq!(PodRecord::read(&dir).expect("read"), record);
        assert!(record.is_running(), "this very process holds it");
        assert_eq!(record.summary(), "ContainerCreating");
        assert_eq!(record.wasmpod.ready, "0/1");

        // Another process that got the pod process's pid is not it.
        let mut reused = record.clone();
        reused.wasmpod.pid_start += 1;
        assert!(!reused.is_running());
        assert_eq!(
            reused.summary(),
            "Unknown",
            "its process died without ending it"
        );
        let ended = PodRecord::new(&spec, Timestamp::now(), &status, true);
        assert!(!ended.is_running());

        let found = find(state.path(), "shop", "web").expect("found by name");
        assert_eq!(found.dir, dir);
        let missing = find(state.path(), "default", "web").expect_err("other namespace");
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(
            missing.to_string(),
            "pod \"web\" not found in namespace \"default\""
        );
    }
}
