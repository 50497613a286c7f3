//! A test harness for guest authors: build a pod of your modules in your own `cargo test`, run
//! it with a deadline, and assert on its phase, exit codes, reasons, logs and files.
//!
//! ```
//! use std::time::Duration;
//! use wasmpod::harness::{Container, PodBuilder};
//! use wasmpod::status::Phase;
//!
//! let run = PodBuilder::new("demo")
//!     .empty_dir("data")
//!     .container(
//!         Container::new("writer", wasmpod_guests::WRITE_P1)
//!             .args(["/data/a.txt", "hello"])
//!             .mount("data", "/data"),
//!     )
//!     .container(Container::new("greeter", wasmpod_guests::HELLO_P2))
//!     .run_blocking(Duration::from_secs(60))?;
//! assert_eq!(run.phase(), Phase::Succeeded);
//! assert_eq!(run.exit_code("writer"), Some(0));
//! assert_eq!(run.stdout("greeter"), "hello from wasm\n");
//! assert_eq!(run.read_file("data", "a.txt")?, "hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Pods built here default to `restartPolicy: Never` (a test usually wants the pod to end), a
//! 5 s grace period and a 100 ms restart back-off; volumes stay readable on the [`PodRun`]
//! until it is dropped. Containers' output is kept in memory, per run (the newest 10 MiB of
//! each, as one of kubelet's rotated log files holds), not in files. All pods of a test binary share one engine and the user's compile
//! cache, so a module is compiled once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::admission::Node;
use crate::engine::{Engine, EngineConfig, ExitReason, ExitStatus, GuestIo};
use crate::error::{Error, Result};
use crate::hostdir::HostDir;
use crate::logs::{LogSink, LogStream, MemoryLogs};
use crate::net::PodStream;
use crate::pod::{ExecConfig, PodDir, Sandbox};
use crate::runner::{PodProcess, Prepare, RunOptions, Shutdown};
use crate::spec::{
    ContainerSpec, Handler, HostPathType, MountSpec, PodSpec, RestartPolicy, SpecError,
    VolumeSource, VolumeSpec,
};
use crate::status::{ContainerRecord, Phase, PodStatus};

/// One container of a test pod.
#[derive(Debug, Clone)]
pub struct Container {
    spec: ContainerSpec,
    bytes: Option<Arc<[u8]>>,
}

impl Container {
    /// A container running the `.wasm` file at `module`.
    pub fn new(name: &str, module: impl Into<PathBuf>) -> Self {
        Container {
            spec: ContainerSpec::new(name, module),
            bytes: None,
        }
    }

    /// A container running the module `bytes`.
    pub fn from_bytes(name: &str, bytes: impl Into<Arc<[u8]>>) -> Self {
        Container {
            spec: ContainerSpec::new(name, format!("{name}.wasm")),
            bytes: Some(bytes.into()),
        }
    }

    /// Appends arguments (after `argv[0]`, the module's file name).
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.spec.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.spec.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Mounts volume `volume` at `path`, writable.
    pub fn mount(self, volume: &str, path: &str) -> Self {
        self.add_mount(volume, path, false)
    }

    /// Mounts volume `volume` at `path`, read-only.
    pub fn mount_read_only(self, volume: &str, path: &str) -> Self {
        self.add_mount(volume, path, true)
    }

    fn add_mount(mut self, volume: &str, path: &str, read_only: bool) -> Self {
        self.spec.mounts.push(MountSpec {
            volume: volume.to_owned(),
            mount_path: path.to_owned(),
            read_only,
            sub_path: None,
        });
        self
    }

    /// Declares `containerPort: port`: a `wasi:http` service listens on the first one.
    pub fn port(mut self, port: u16) -> Self {
        self.spec.ports.push(port);
        self
    }

    /// Sets the working directory.
    pub fn working_dir(mut self, dir: &str) -> Self {
        self.spec.working_dir = Some(dir.to_owned());
        self
    }

    /// Sets the `postStart` hook, run once the guest started (an exec runs in the container,
    /// as [`LivePod::exec`] does); until it completes the container is not started.
    pub fn post_start(mut self, hook: Handler) -> Self {
        self.spec.post_start = Some(hook);
        self
    }

    /// Sets the `preStop` hook, run before the termination request.
    pub fn pre_stop(mut self, hook: Handler) -> Self {
        self.spec.pre_stop = Some(hook);
        self
    }

    /// Sets `resources.limits.memory` (and the request, as Kubernetes defaults it).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.spec.resources.memory_limit = Some(bytes);
        self.spec.resources.memory_request.get_or_insert(bytes);
        self
    }

    /// Sets `resources.limits.cpu` in millicores (and the request).
    pub fn cpu_limit(mut self, millis: u64) -> Self {
        self.spec.resources.cpu_limit = Some(millis);
        self.spec.resources.cpu_request.get_or_insert(millis);
        self
    }
}

/// A test pod, from a manifest or built container by container.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    spec: PodSpec,
    bytes: Vec<(String, Arc<[u8]>)>,
    backoff_base: Duration,
    node: Option<Arc<Node>>,
}

impl PodBuilder {
    /// An empty pod named `name` (restart policy `Never`, grace period 5 s).
    pub fn new(name: &str) -> Self {
        PodBuilder::from_spec(PodSpec {
            name: name.to_owned(),
            namespace: "default".to_owned(),
            uid: name.to_owned(),
            labels: Default::default(),
            annotations: Default::default(),
            hostname: name.to_owned(),
            init_containers: Vec::new(),
            containers: Vec::new(),
            volumes: Vec::new(),
            restart_policy: RestartPolicy::Never,
            termination_grace_period: Duration::from_secs(5),
            active_deadline: None,
        })
    }

    /// A pod from a manifest; relative images resolve against the current directory (the
    /// crate's directory under `cargo test`).
    pub fn from_yaml(manifest: &str) -> Result<Self> {
        let dir = std::env::current_dir().map_err(|e| Error::io("current dir", ".", e))?;
        Ok(PodBuilder::from_spec(crate::spec::parse_pod(
            manifest, &dir,
        )?))
    }

    /// A pod from a manifest file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Ok(PodBuilder::from_spec(crate::spec::parse_pod_file(
            path.as_ref(),
        )?))
    }

    /// A pod from a validated spec.
    pub fn from_spec(spec: PodSpec) -> Self {
        PodBuilder {
            spec,
            bytes: Vec::new(),
            backoff_base: Duration::from_millis(100),
            node: None,
        }
    }

    /// Adds an app container.
    pub fn container(mut self, container: Container) -> Self {
        self.add(container, false);
        self
    }

    /// Adds an init container (they run in the order added).
    pub fn init_container(mut self, container: Container) -> Self {
        self.add(container, true);
        self
    }

    /// Adds a native sidecar: an init container with `restartPolicy: Always`, started in
    /// order with the init containers and kept running beside the app containers.
    pub fn sidecar(mut self, mut container: Container) -> Self {
        container.spec.sidecar = true;
        self.add(container, true);
        self
    }

    fn add(&mut self, container: Container, init: bool) {
        if let Some(bytes) = container.bytes {
            self.bytes.push((container.spec.name.clone(), bytes));
        }
        if init {
            self.spec.init_containers.push(container.spec);
        } else {
            self.spec.containers.push(container.spec);
        }
    }

    /// Declares an emptyDir volume.
    pub fn empty_dir(self, name: &str) -> Self {
        self.volume(
            name,
            VolumeSource::EmptyDir {
                memory: false,
                size_limit: None,
            },
        )
    }

    /// Declares an emptyDir volume with a `sizeLimit`: the pod is evicted when it grows past.
    pub fn empty_dir_with_limit(self, name: &str, size_limit: u64) -> Self {
        self.volume(
            name,
            VolumeSource::EmptyDir {
                memory: false,
                size_limit: Some(size_limit),
            },
        )
    }

    /// Declares a hostPath volume (a directory that must exist).
    pub fn host_path(self, name: &str, path: impl Into<PathBuf>) -> Self {
        let kind = HostPathType::Directory;
        self.volume(
            name,
            VolumeSource::HostPath {
                path: path.into(),
                kind,
            },
        )
    }

    fn volume(mut self, name: &str, source: VolumeSource) -> Self {
        self.spec.volumes.push(VolumeSpec {
            name: name.to_owned(),
            source,
        });
        self
    }

    /// Sets the restart policy.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.spec.restart_policy = policy;
        self
    }

    /// Sets the termination grace period.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.spec.termination_grace_period = grace;
        self
    }

    /// Sets `activeDeadlineSeconds`.
    pub fn active_deadline(mut self, deadline: Duration) -> Self {
        self.spec.active_deadline = Some(deadline);
        self
    }

    /// Sets the first restart back-off delay.
    pub fn backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// The node the pod must fit (default: this machine).
    pub fn node(mut self, node: Arc<Node>) -> Self {
        self.node = Some(node);
        self
    }

    /// The pod as built so far.
    pub fn spec(&self) -> &PodSpec {
        &self.spec
    }

    /// Runs the pod to its end. A pod still running at `timeout` is killed and the result is
    /// [`Error::Timeout`].
    pub async fn run(self, timeout: Duration) -> Result<PodRun> {
        self.run_while(timeout, None::<fn(LivePod) -> std::future::Ready<()>>)
            .await
    }

    /// Runs the pod and, while it runs, `test` with a [`LivePod`] (connect to its ports, send
    /// it HTTP requests). When `test` returns, the pod is terminated as on deletion (each
    /// container's termination request, then its grace period) and the run returned; a pod
    /// that ends first still lets `test` run to its end. A pod still running at `timeout` is
    /// killed and the result is [`Error::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmpod::harness::{Container, PodBuilder};
    ///
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let run = runtime.block_on(
    ///     PodBuilder::new("web")
    ///         .container(Container::new("web", wasmpod_guests::HTTP_SERVICE_P2).port(8080))
    ///         .run_with(Duration::from_secs(60), |pod| async move {
    ///             let request = http::Request::get("/").body(bytes::Bytes::new());
    ///             let request = request.expect("a valid request");
    ///             let response = pod.request(8080, request).await.expect("response");
    ///             assert_eq!(response.body(), "hello from wasi:http\n");
    ///         }),
    /// )?;
    /// assert_eq!(run.exit_code("web"), Some(0), "a service drains and exits 0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn run_with<F, Fut>(self, timeout: Duration, test: F) -> Result<PodRun>
    where
        F: FnOnce(LivePod) -> Fut,
        Fut: Future<Output = ()>,
    {
        self.run_while(timeout, Some(test)).await
    }

    async fn run_while<F, Fut>(self, timeout: Duration, test: Option<F>) -> Result<PodRun>
    where
        F: FnOnce(LivePod) -> Fut,
        Fut: Future<Output = ()>,
    {
        let dir = tempfile::Builder::new()
            .prefix("wasmpod-test-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
        let mut spec = self.spec;
        check(&spec)?;
        for (name, bytes) in &self.bytes {
            let path = dir.path().join(format!("{name}.wasm"));
            std::fs::write(&path, bytes).map_err(|e| Error::io("write module", &path, e))?;
            for c in spec.containers.iter_mut().chain(&mut spec.init_containers) {
                if &c.name == name {
                    c.module = path.clone();
                }
            }
        }
        let mut prepare = Prepare::new(dir.path());
        prepare.node = self.node.or(prepare.node);
        let engine = shared_engine()?;
        // Blocking (images compile on a cache miss): off the async threads.
        let process =
            crate::blocking::unblocked(move || PodProcess::prepare(&engine, spec, prepare)).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let (sandbox_tx, sandbox_rx) = tokio::sync::oneshot::channel();
        let sandbox_tx = Mutex::new(Some(sandbox_tx));
        let logs = MemoryLogs::default();
        let (status_tx, status_rx) = tokio::sync::watch::channel(PodStatus::new(process.spec()));
        let options = RunOptions {
            logs: LogSink::Memory(logs.clone()),
            on_status: Some(Arc::new(move |status: &PodStatus| {
                status_tx.send_replace(status.clone());
            })),
            backoff_base: self.backoff_base,
            retain_volumes: true,
            eviction_interval: Duration::from_millis(50),
            on_sandbox: Some(Arc::new(move |sandbox: &Sandbox| {
                let sender = sandbox_tx
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(sender) = sender {
                    let _ = sender.send(sandbox.clone());
                }
            })),
            ..RunOptions::default()
        };
        let shutdown = Shutdown::new();
        let status = {
            let mut run = std::pin::pin!(process.run(options, shutdown.clone()));
            let driven = async {
                if let Some(test) = test {
                    // The test runs beside the pod; the pod is terminated when it returns.
                    // A pod that ended on its own first still lets the test run to its end
                    // (its waits see the final status, then `None`), so no assertion of it
                    // is skipped.
                    let tested = async {
                        if let Ok(sandbox) = sandbox_rx.await {
                            test(LivePod {
                                sandbox,
                                status: status_rx,
                                deadline,
                                timeout,
                                shutdown: shutdown.clone(),
                            })
                            .await;
                        }
                    };
                    let mut tested = std::pin::pin!(tested);
                    tokio::select! {
                        status = &mut run => {
                            tested.await;
                            return status;
                        }
                        () = &mut tested => shutdown.terminate(),
                    }
                }
                run.as_mut().await
            };
            match tokio::time::timeout_at(deadline, driven).await {
                Ok(status) => status?,
                Err(_) => {
                    shutdown.kill();
                    let _ = run.await;
                    return Err(Error::Timeout {
                        pod: process.spec().name.clone(),
                        after: timeout,
                    });
                }
            }
        };
        let pod_dir = process.dir().clone();
        let spec = process.spec().clone();
        // No host layer to undo; the directory goes with the temp dir when the run is dropped.
        process.teardown(false);
        let memory_volumes = spec
            .volumes
            .iter()
            .filter(|v| {
                matches!(
                    v.source,
                    VolumeSource::EmptyDir { memory: true, .. }
                        | VolumeSource::Projected { memory: true, .. }
                )
            })
            .map(|v| v.name.clone())
            .collect();
        Ok(PodRun {
            status,
            logs,
            pod_dir,
            memory_volumes,
            _dir: dir,
        })
    }

    /// [`PodBuilder::run`] on a runtime of its own, for plain `#[test]` functions.
    pub fn run_blocking(self, timeout: Duration) -> Result<PodRun> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start tokio runtime", ".", e))?;
        runtime.block_on(self.run(timeout))
    }
}

/// A running test pod, as [`PodBuilder::run_with`] hands it to the test: wait for its
/// status (Ready...), reach its loopback as its containers do, exec into its containers,
/// terminate it.
#[derive(Debug, Clone)]
pub struct LivePod {
    sandbox: Sandbox,
    /// The pod's latest status.
    status: tokio::sync::watch::Receiver<PodStatus>,
    /// The run's deadline: waits end there.
    deadline: tokio::time::Instant,
    /// The run's timeout, which set the deadline.
    timeout: Duration,
    shutdown: Shutdown,
}

/// What a command run with [`LivePod::exec`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutput {
    /// How it ended (127 for a command not found).
    pub exit: ExitStatus,
    /// Its stdout (the first MiB).
    pub stdout: String,
    /// Its stderr (the first MiB).
    pub stderr: String,
}

impl LivePod {
    /// The pod's status now.
    pub fn status(&self) -> PodStatus {
        self.status.borrow().clone()
    }

    /// Waits until the pod's status satisfies `what` and returns that status; `None` if the
    /// run's deadline came first or the pod ended without it.
    pub async fn wait_for(&self, what: impl Fn(&PodStatus) -> bool) -> Option<PodStatus> {
        let mut status = self.status.clone();
        let waited = tokio::time::timeout_at(self.deadline, status.wait_for(|s| what(s))).await;
        match waited {
            Ok(Ok(status)) => Some(status.clone()),
            _ => None,
        }
    }

    /// Waits until the pod is Ready (every app container and sidecar running and passing its
    /// readiness probe); `None` as for [`LivePod::wait_for`].
    pub async fn wait_ready(&self) -> Option<PodStatus> {
        self.wait_for(PodStatus::is_ready).await
    }

    /// Runs `argv` in running container `container`, as `kubectl exec` does (a module path,
    /// a name on its `PATH`, a toolbox tool), with empty stdin, and returns its output.
    pub async fn exec<S: Into<String>>(
        &self,
        container: &str,
        argv: impl IntoIterator<Item = S>,
    ) -> Result<ExecOutput> {
        const LIMIT: usize = 1 << 20;
        let (stdout, stderr) = (MemoryOutputPipe::new(LIMIT), MemoryOutputPipe::new(LIMIT));
        let config = ExecConfig {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: None,
            io: GuestIo {
                stdout: Box::new(stdout.clone()),
                stderr: Box::new(stderr.clone()),
            },
            kill: CancellationToken::new(),
        };
        let exec = self.sandbox.exec(container, config);
        let exit = tokio::time::timeout_at(self.deadline, exec)
            .await
            .map_err(|_| Error::Timeout {
                pod: self.status.borrow().name.clone(),
                after: self.timeout,
            })??;
        let text = |pipe: MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        Ok(ExecOutput {
            exit,
            stdout: text(stdout),
            stderr: text(stderr),
        })
    }

    /// Terminates the pod as on deletion (each container's preStop hook and termination
    /// request, its grace period, then a hard stop): the run returns once it ended.
    pub fn terminate(&self) {
        self.shutdown.terminate();
    }

    /// Connects to `127.0.0.1:port` of the pod's loopback, as a sibling container would;
    /// waits (until the run's deadline) for something to listen there.
    pub async fn connect(&self, port: u16) -> std::io::Result<PodStream> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            match self.sandbox.network().connect(addr).await {
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        && tokio::time::Instant::now() < self.deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                connected => return connected,
            }
        }
    }

    /// Sends `request` (its URI a path, `/` and the rest) over HTTP/1.1 to `127.0.0.1:port`
    /// of the pod and returns the whole response.
    pub async fn request(
        &self,
        port: u16,
        request: http::Request<Bytes>,
    ) -> std::io::Result<http::Response<Bytes>> {
        let stream = self.connect(port).await?;
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key(http::header::HOST) {
            parts.headers.insert(
                http::header::HOST,
                http::HeaderValue::from_static("localhost"),
            );
        }
        crate::net::http1_request(stream, http::Request::from_parts(parts, body)).await
    }
}

/// The checks a manifest gets that a built pod needs too: unique container and volume names,
/// mounts of declared volumes.
fn check(spec: &PodSpec) -> Result<(), SpecError> {
    let containers: Vec<&ContainerSpec> = spec
        .init_containers
        .iter()
        .chain(&spec.containers)
        .collect();
    for (i, c) in containers.iter().enumerate() {
        if containers[..i].iter().any(|other| other.name == c.name) {
            return Err(SpecError::new(c.name.clone(), "duplicate container name"));
        }
        for m in &c.mounts {
            if spec.volume(&m.volume).is_none() {
                return Err(SpecError::new(
                    format!("{}.volumeMounts", c.name),
                    format!("volume {:?} is not declared", m.volume),
                ));
            }
        }
    }
    Ok(())
}

/// The process's engine for test pods, made on first use.
fn shared_engine() -> Result<Engine> {
    static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
    let mut engine = ENGINE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(engine) = engine.as_ref() {
        return Ok(engine.clone());
    }
    let made = Engine::new(EngineConfig::default())?;
    *engine = Some(made.clone());
    Ok(made)
}

/// A finished test pod: its status, logs and volumes (removed when dropped).
#[derive(Debug)]
pub struct PodRun {
    status: PodStatus,
    /// Every container run's output.
    logs: MemoryLogs,
    pod_dir: PodDir,
    /// The volumes on a tmpfs (`medium: Memory` emptyDirs, secrets), which live outside the
    /// pod directory.
    memory_volumes: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for PodRun {
    fn drop(&mut self) {
        // The pod directory goes with the temp dir; memory-backed emptyDirs are elsewhere.
        for name in &self.memory_volumes {
            let _ = crate::hostdir::remove_tree(&self.pod_dir.empty_dir_path(name, true));
        }
    }
}

impl PodRun {
    /// The final status.
    pub fn status(&self) -> &PodStatus {
        &self.status
    }

    /// The final phase.
    pub fn phase(&self) -> Phase {
        self.status.phase
    }

    /// The status of container `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerRecord> {
        self.status.container(name)
    }

    /// The exit code of container `name`'s last run.
    pub fn exit_code(&self, name: &str) -> Option<i32> {
        Some(self.container(name)?.exit()?.code)
    }

    /// Why container `name`'s last run ended.
    pub fn reason(&self, name: &str) -> Option<ExitReason> {
        Some(self.container(name)?.exit()?.reason)
    }

    /// How often container `name` was restarted.
    pub fn restart_count(&self, name: &str) -> u32 {
        self.container(name).map_or(0, |c| c.restart_count)
    }

    /// Every line container `name` wrote in its last run, in order: the newest 10 MiB of it
    /// ([`PodRun::log_lines_dropped`] says how much older output did not fit).
    pub fn logs(&self, name: &str) -> Vec<(LogStream, String)> {
        self.logs.lines(name, self.restart_count(name))
    }

    /// Every line container `name` wrote in run `restart` (0 is its first run).
    pub fn logs_of_run(&self, name: &str, restart: u32) -> Vec<(LogStream, String)> {
        self.logs.lines(name, restart)
    }

    /// How many of the oldest records (lines, or 16 KiB pieces of longer ones) of container
    /// `name`'s last run were dropped to keep its output within 10 MiB.
    pub fn log_lines_dropped(&self, name: &str) -> u64 {
        self.logs.dropped(name, self.restart_count(name))
    }

    /// What container `name` wrote to stdout in its last run, one `\n` after each line.
    pub fn stdout(&self, name: &str) -> String {
        self.stream(name, LogStream::Stdout)
    }

    /// What container `name` wrote to stderr in its last run.
    pub fn stderr(&self, name: &str) -> String {
        self.stream(name, LogStream::Stderr)
    }

    fn stream(&self, name: &str, stream: LogStream) -> String {
        self.logs(name)
            .into_iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, line)| line + "\n")
            .collect()
    }

    /// The host directory of emptyDir `volume` (hostPaths are where you put them).
    pub fn volume_path(&self, volume: &str) -> PathBuf {
        let memory = self.memory_volumes.iter().any(|v| v == volume);
        self.pod_dir.empty_dir_path(volume, memory)
    }

    /// Reads `path` (relative) from emptyDir `volume`, resolved beneath the volume: a symlink
    /// the guest planted never leads the test out of it.
    pub fn read_file(&self, volume: &str, path: &str) -> std::io::Result<String> {
        let bytes = HostDir::open(&self.volume_path(volume))?.read(Path::new(path))?;
        String::from_utf8(bytes).map_err(std::io::Error::other)
    }
}
