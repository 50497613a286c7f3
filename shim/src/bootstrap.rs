//! The shim process from its first instruction: what `main` calls.
//!
//! containerd runs the binary three ways (containerd-shim's `run` tells them apart):
//! - `start`, in the bundle of a task: finds the pod the task belongs to (its
//!   `io.kubernetes.cri.sandbox-id`, else its own id) and answers the address of that pod's
//!   shim, spawning it when it does not run yet;
//! - no action (the spawned server), in the bundle of the pod's first task: when that task is
//!   a pod sandbox, the pod's host layer (cgroup from `linux.cgroupsPath`, the network namespace
//!   CRI made) is created and entered *before* the tokio runtime starts its threads, as
//!   namespaces are per thread and threads inherit them; then it serves the task API until
//!   the last task is deleted;
//! - `delete`, after a shim died: cleans up what it left for one task (rootfs mount, the pod's
//!   directory and host layer);
//! - `-info` (containerd 2.x, when CRI starts and when a task is created): prints the
//!   runtime's `RuntimeInfo`.
//!
//! Every containerd from 1.6 to 2.3 takes the plain socket address `start` prints as a shim
//! speaking task API v2 over ttrpc. What containerd writes to `start`'s stdin changed: the
//! runtime's options (a protobuf `Any`, only when the runtime has options) up to 2.2, a
//! `containerd.runtime.bootstrap.v1.BootstrapParams` message since 2.3. wasmpod reads neither
//! (its settings come from the environment), so `start` drains stdin before containerd-shim
//! 0.11 could parse it as runc's options, which fails on a bootstrap message.
//!
//! Environment: `WASMPOD_STATE_DIR` (pod directories, default `/run/wasmpod/containerd`),
//! `WASMPOD_CACHE_DIR` (compiled modules, default `/var/cache/wasmpod`), `RUST_LOG`.
//! containerd passes its own environment to its shims.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use containerd_shim::api::DeleteResponse;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, Error, Flags, Shim, StartOpts};
use tokio_util::sync::CancellationToken;
use wasmpod::host::{CgroupLimits, DEFAULT_PIDS_MAX, HostConfig, NetnsMode};
use wasmpod::pod::PodDir;
use wasmpod::runner::PodHost;
use wasmpod::{Engine, EngineConfig};

use crate::bundle::{self, SandboxRequest, TaskKind};
use crate::events;
use crate::layers::ContentStore;
use crate::runtime::{HostSetup, WasmpodRuntime};
use crate::task::{EXIT_SIGKILL, TaskService};

/// The runtime type containerd knows this shim by.
pub const RUNTIME_ID: &str = "io.containerd.wasmpod.v1";
/// Default root of pod directories (one per namespace, then one per pod sandbox).
pub const DEFAULT_STATE_DIR: &str = "/run/wasmpod/containerd";
/// Default compile cache.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/wasmpod";

/// The host layer the server made before its threads, handed to the runtime when the task
/// service is built (containerd-shim builds the service; it takes no arguments of ours).
static HOST_SETUP: Mutex<Option<HostSetup>> = Mutex::new(None);

/// Runs the shim: what `main` does. Exits the process with 1 on a bootstrap error.
pub fn run() {
    let args: Vec<_> = std::env::args_os().collect();
    if let Ok(flags) = containerd_shim::parse(args.get(1..).unwrap_or_default()) {
        if flags.version {
            // As containerd's own shims answer `-v`.
            println!(
                "{}:\n  Version: {}",
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION")
            );
            println!("  Runtime: {RUNTIME_ID}");
            return;
        }
        if flags.info {
            print_runtime_info();
            return;
        }
        if flags.action == "start" {
            drain_stdin();
        }
    }
    let setup = prepare_host();
    *HOST_SETUP.lock().unwrap_or_else(PoisonError::into_inner) = Some(setup);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wasmpod-shim")
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(containerd_shim::run::<WasmpodShim>(
            RUNTIME_ID,
            Some(Config {
                // Logging is set up in `create_task_service` (tracing into containerd's log).
                no_setup_logger: true,
                ..Config::default()
            }),
        )),
        Err(error) => {
            eprintln!("{RUNTIME_ID}: cannot start the tokio runtime: {error}");
            std::process::exit(1);
        }
    }
}

/// The most of stdin `start` and `-info` read: containerd writes a small message there.
const MAX_STDIN: u64 = 16 << 20;

/// Reads what containerd wrote to stdin (runtime options or a bootstrap message), unused.
fn drain_stdin() {
    let mut input = Vec::new();
    if let Err(error) = std::io::stdin().take(MAX_STDIN).read_to_end(&mut input) {
        eprintln!("{RUNTIME_ID}: read stdin: {error}");
    }
}

/// `-info`: the runtime's name and version as a protobuf `containerd.types.RuntimeInfo` on
/// stdout (not wrapped in an `Any`). containerd may write the runtime's options to stdin.
fn print_runtime_info() {
    drain_stdin();
    let info = RuntimeInfo {
        name: RUNTIME_ID.to_owned(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..RuntimeVersion::default()
        }),
        ..RuntimeInfo::default()
    };
    let written = info
        .write_to_bytes()
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::io::stdout().write_all(&bytes));
    if let Err(error) = written {
        eprintln!("{RUNTIME_ID}: -info: {error}");
        std::process::exit(1);
    }
}

/// In the server process of a pod sandbox, creates and enters the pod's host layer while the
/// process has only this thread.
fn prepare_host() -> HostSetup {
    let args: Vec<_> = std::env::args_os().collect();
    let Ok(flags) = containerd_shim::parse(args.get(1..).unwrap_or_default()) else {
        return Ok(None);
    };
    if !flags.action.is_empty() || flags.socket.is_empty() {
        return Ok(None);
    }
    if serving(&flags.socket) {
        // The pod's shim runs already (this process only hands containerd its address).
        return Ok(None);
    }
    let bundle = std::env::current_dir().unwrap_or_default();
    let Ok(TaskKind::Sandbox(sandbox)) = bundle::load(&flags.id, &bundle) else {
        return Ok(None);
    };
    // Without privileges the pod runs in the shim's own cgroup and the namespace it was
    // started in.
    let layer = wasmpod::host::privileged().then(|| host_config(&sandbox));
    let host = PodHost::establish(
        PodDir::new(pod_dir(&flags.namespace, &sandbox.id)),
        layer.as_ref().map(|(config, name)| (config, name.as_str())),
    )?;
    Ok(Some(host))
}

/// The host layer of a CRI pod sandbox: the namespace CRI made (or the host's, for a
/// `hostNetwork` pod) and a cgroup where `linux.cgroupsPath` says; `(config, cgroup name)`.
pub fn host_config(sandbox: &SandboxRequest) -> (HostConfig, String) {
    let location = sandbox
        .cgroups_path
        .as_deref()
        .and_then(bundle::cgroup_location);
    let name = location
        .as_ref()
        .map_or_else(|| sandbox.id.clone(), |(_, name)| name.clone());
    let config = HostConfig {
        cgroup_parent: location.map(|(parent, _)| parent),
        limits: CgroupLimits {
            pids_max: Some(DEFAULT_PIDS_MAX),
            ..CgroupLimits::default()
        },
        netns: sandbox
            .netns
            .clone()
            .map_or(NetnsMode::Host, NetnsMode::Path),
        pod_ip: None,
    };
    (config, name)
}

/// Whether a shim serves at `address` (`unix://PATH`).
fn serving(address: &str) -> bool {
    std::os::unix::net::UnixStream::connect(address.trim_start_matches("unix://")).is_ok()
}

/// The directory of namespace `namespace`'s pods.
fn state_root(namespace: &str) -> PathBuf {
    std::env::var_os("WASMPOD_STATE_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from)
        .join(namespace)
}

/// The directory of the pod whose sandbox is `id`.
fn pod_dir(namespace: &str, id: &str) -> PathBuf {
    state_root(namespace).join(id)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("WASMPOD_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from)
}

/// containerd-shim's view of the shim: the three actions.
#[derive(Debug)]
pub struct WasmpodShim {
    namespace: String,
    /// containerd's gRPC socket.
    address: String,
    id: String,
    debug: bool,
    shutdown: CancellationToken,
}

#[async_trait]
impl Shim for WasmpodShim {
    type T = TaskService<WasmpodRuntime>;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        WasmpodShim {
            namespace: args.namespace.clone(),
            address: args.address.clone(),
            id: args.id.clone(),
            debug: args.debug,
            shutdown: CancellationToken::new(),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let bundle = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
        let grouping = bundle::grouping(&opts.id, &bundle);
        let address = containerd_shim::socket_address(&opts.address, &opts.namespace, &grouping);
        let address = if serving(&address) {
            // The pod's shim runs: hand containerd its address, as containerd's own shims do,
            // instead of spawning a server that would find the socket taken and exit.
            address
        } else {
            containerd_shim::spawn(opts, &grouping, Vec::new()).await?
        };
        // `delete` reads it to tell whether the shim still runs.
        std::fs::write(bundle.join("address"), &address)
            .map_err(|e| Error::Other(format!("write address: {e}")))?;
        Ok(address)
    }

    async fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        let bundle = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
        cleanup_dead_task(&self.namespace, &self.id, &bundle);
        Ok(DeleteResponse {
            pid: 0,
            exit_status: EXIT_SIGKILL,
            exited_at: MessageField::some(events::timestamp(jiff::Timestamp::now())),
            ..DeleteResponse::default()
        })
    }

    async fn wait(&mut self) {
        self.shutdown.cancelled().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        init_logging(self.debug);
        let host_setup = HOST_SETUP
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or(Ok(None));
        let engine = Engine::new(EngineConfig {
            cache_dir: Some(cache_dir()),
            ..EngineConfig::for_one_pod()
        });
        let engine = match engine {
            Ok(engine) => engine,
            Err(error) => {
                tracing::error!(%error, "cannot build the wasmtime engine");
                std::process::exit(1);
            }
        };
        let content = (!self.address.is_empty()).then(|| ContentStore {
            address: self.address.trim_start_matches("unix://").to_owned(),
            namespace: self.namespace.clone(),
        });
        let runtime = WasmpodRuntime::new(engine, state_root(&self.namespace), host_setup, content);
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(events::forward(
            publisher,
            self.namespace.clone(),
            events_rx,
        ));
        tracing::info!(id = self.id, namespace = self.namespace, "shim serving");
        TaskService::new(
            runtime,
            self.namespace.clone(),
            std::process::id(),
            events_tx,
            self.shutdown.clone(),
        )
    }
}

/// Logs (`RUST_LOG`, default `info`, `debug` with containerd's `-debug`) into the `log` FIFO
/// containerd reads in the bundle, else stderr.
fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let result = match std::fs::OpenOptions::new().write(true).open("log") {
        Ok(fifo) => builder.with_writer(Mutex::new(fifo)).try_init(),
        Err(_) => builder.with_writer(std::io::stderr).try_init(),
    };
    if let Err(error) = result {
        eprintln!("{RUNTIME_ID}: cannot set up logging: {error}");
    }
}

/// After the shim serving task `id` died: unmounts the task's rootfs; when the shim is gone
/// for good, cleans up the pod it served (host layer, pod directory) and its socket.
fn cleanup_dead_task(namespace: &str, id: &str, bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    if let Err(error) = crate::runtime::unmount_rootfs(&rootfs) {
        eprintln!("{RUNTIME_ID}: {error}");
    }
    let address = std::fs::read_to_string(bundle.join("address")).unwrap_or_default();
    let socket = address.trim().trim_start_matches("unix://");
    if !socket.is_empty() && serving(socket) {
        // The pod's shim still serves its other tasks.
        return;
    }
    for dir in wasmpod::host::recover(&state_root(namespace)) {
        let _ = wasmpod::hostdir::remove_tree(&dir);
    }
    let dir = pod_dir(namespace, id);
    if dir.exists()
        && let Err(error) = wasmpod::hostdir::remove_tree(&dir)
    {
        eprintln!("{RUNTIME_ID}: remove {}: {error}", dir.display());
    }
    if !socket.is_empty() {
        let _ = std::fs::remove_file(socket);
    }
}
