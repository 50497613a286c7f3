//! `net`: round trip and throughput between two modules of one pod over the virtual loopback,
//! next to the same guests over the kernel's loopback and two native processes, in one run.
//!
//! `cargo run --release -p wasmpod-bench --bin bench-net -- --help`; see `bench/README.md`.
//!
//! Every case runs the same exchange: a 1-byte ping-pong (`--rounds` round trips, each timed
//! by the client: the `tcp pingpong-*` guests time themselves with the WASI monotonic clock)
//! and a bulk stream (`--bytes` bytes in 64 KiB writes, timed by the client from its first
//! write to the server closing after it read everything: the `bulk` guests). The wasm cases
//! are two containers of one pod, once with the pod's virtual loopback and once with it off
//! (`NetworkConfig::virtual_loopback = false`: the same guests through wasmtime-wasi's real
//! sockets). The native case is this binary and a child process of it over 127.0.0.1 with
//! `TCP_NODELAY`, the best the kernel does. Goals are reported, never asserted.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Parser;
use tokio::sync::mpsc;
use wasmpod::logs::LogStream;
use wasmpod::net::NetworkConfig;
use wasmpod::spec::ContainerSpec;
use wasmpod::{ContainerConfig, Engine, EngineConfig, Sandbox, SandboxConfig};
use wasmpod_bench::stats::{Samples, fmt_duration};

/// How long any one guest may take before the run counts as failed: a guard against hangs.
const DEADLINE: Duration = Duration::from_secs(300);
/// The bulk cases' write size, guest and native.
const CHUNK: usize = 64 << 10;
/// Goal: the virtual loopback's p50 round trip at most this fraction of native's.
const GOAL_RTT_RATIO: f64 = 0.5;
/// Goal: the virtual loopback's throughput at least this multiple of native's.
const GOAL_THROUGHPUT_RATIO: f64 = 2.0;

/// Round trip and throughput over the virtual loopback, the kernel's loopback from wasm, and
/// natively.
#[derive(Parser, Debug)]
struct Cli {
    /// Timed 1-byte round trips per case.
    #[arg(long, default_value_t = 50_000)]
    rounds: usize,
    /// Bytes streamed per bulk run.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Bulk runs per case (the median is reported).
    #[arg(long, default_value_t = 3)]
    bulk_runs: usize,
    /// Tokio worker threads (default: one per core, as `wasmpod run`).
    #[arg(long)]
    workers: Option<usize>,
    /// Internal: serve one native connection (`pingpong` or `bulk`) on 127.0.0.1, printing the
    /// port first.
    #[arg(long, hide = true)]
    peer: Option<String>,
}

/// What one case measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rtt_p50: Duration,
    rtt_p90: Duration,
    rtt_p99: Duration,
    /// Bytes per second, the median run.
    throughput: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(mode) = &cli.peer {
        return native_peer(mode);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = cli.workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.enable_all().build()?;
    print_machine();
    let engine = Engine::new(EngineConfig {
        cache_dir: None,
        ..EngineConfig::default()
    })?;
    let virtual_loopback = runtime.block_on(wasm_case(&engine, &cli, true))?;
    let kernel_wasm = runtime.block_on(wasm_case(&engine, &cli, false))?;
    let native = native_case(&cli)?;

    println!();
    println!(
        "{:<38} {:>10} {:>10} {:>10} {:>12}",
        "case", "rtt p50", "rtt p90", "rtt p99", "throughput"
    );
    for (name, f) in [
        ("wasm ↔ wasm, virtual loopback", virtual_loopback),
        ("wasm ↔ wasm, kernel loopback", kernel_wasm),
        ("native ↔ native processes, kernel", native),
    ] {
        println!(
            "{name:<38} {:>10} {:>10} {:>10} {:>9.2} GB/s",
            fmt_duration(f.rtt_p50),
            fmt_duration(f.rtt_p90),
            fmt_duration(f.rtt_p99),
            f.throughput / 1e9
        );
    }
    let rtt_ratio = virtual_loopback.rtt_p50.as_secs_f64() / native.rtt_p50.as_secs_f64();
    let throughput_ratio = virtual_loopback.throughput / native.throughput;
    println!();
    println!(
        "virtual p50 round trip = {rtt_ratio:.2}× native (goal ≤ {GOAL_RTT_RATIO}): {}",
        verdict(rtt_ratio <= GOAL_RTT_RATIO)
    );
    println!(
        "virtual throughput = {throughput_ratio:.2}× native (goal ≥ {GOAL_THROUGHPUT_RATIO}): {}",
        verdict(throughput_ratio >= GOAL_THROUGHPUT_RATIO)
    );
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_machine() {
    println!("machine: {}", wasmpod_bench::stats::machine());
}

/// A pod whose guests' stdout lines arrive on a channel.
struct Pod {
    sandbox: Sandbox,
    lines: mpsc::UnboundedReceiver<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Pod {
    async fn new(engine: &Engine, network: NetworkConfig) -> Result<Pod> {
        let dir = tempfile::tempdir()?;
        let (tx, lines) = mpsc::unbounded_channel();
        let config = SandboxConfig {
            log_observer: Some(Arc::new(move |container, stream, line, _| {
                if stream == LogStream::Stdout {
                    let _ = tx.send((container.to_owned(), line.to_owned()));
                }
            })),
            network,
            ..SandboxConfig::new("bench-net", dir.path().to_owned())
        };
        let sandbox = Sandbox::create(engine, config).await?;
        Ok(Pod {
            sandbox,
            lines,
            _dir: dir,
        })
    }

    async fn start(&self, name: &str, module: &str, args: &[&str]) -> Result<()> {
        let mut spec = ContainerSpec::new(name, module);
        spec.argv.extend(args.iter().map(|a| a.to_string()));
        self.sandbox
            .create_container(ContainerConfig::new(spec, 0))
            .await?;
        self.sandbox.start_container(name)?;
        Ok(())
    }

    /// The next stdout line of `container` starting with `prefix`.
    async fn line(&mut self, container: &str, prefix: &str) -> Result<String> {
        let wait = async {
            while let Some((c, line)) = self.lines.recv().await {
                if c == container && line.starts_with(prefix) {
                    return Some(line);
                }
            }
            None
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .with_context(|| format!("{container} did not print {prefix:?} in time"))?
            .with_context(|| format!("{container} ended without printing {prefix:?}"))
    }

    /// Waits for `name` to exit 0 and removes it.
    async fn finish(&self, name: &str) -> Result<()> {
        let exit = tokio::time::timeout(DEADLINE, self.sandbox.wait_container(name))
            .await
            .with_context(|| format!("{name} did not end in time"))??;
        ensure!(exit.success(), "{name} failed: {exit:?}");
        self.sandbox.remove_container(name)?;
        Ok(())
    }
}

/// Two containers of one pod: ping-pong, then the bulk runs.
async fn wasm_case(engine: &Engine, cli: &Cli, virtual_loopback: bool) -> Result<Figures> {
    let mut pod = Pod::new(
        engine,
        NetworkConfig {
            virtual_loopback,
            ..NetworkConfig::default()
        },
    )
    .await?;
    let tcp = wasmpod_guests::TCP_P2;
    let bulk = wasmpod_guests::BULK_P2;
    let addr = || -> Result<String> { Ok(format!("127.0.0.1:{}", free_port()?)) };

    let at = addr()?;
    pod.start("ping-server", tcp, &["pingpong-server", &at])
        .await?;
    pod.line("ping-server", "listening on").await?;
    let rounds = cli.rounds.to_string();
    pod.start("ping-client", tcp, &["pingpong-client", &at, &rounds])
        .await?;
    let rtt = pod.line("ping-client", "rtt ").await?;
    pod.finish("ping-client").await?;
    pod.finish("ping-server").await?;
    let field = |name: &str| -> Result<Duration> {
        let ns = rtt
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .with_context(|| format!("no {name} in {rtt:?}"))?;
        Ok(Duration::from_nanos(ns))
    };

    let bytes = cli.bytes.to_string();
    let mut rates = Vec::new();
    for _ in 0..cli.bulk_runs.max(1) {
        let at = addr()?;
        pod.start("bulk-server", bulk, &["server", &at, "--raw"])
            .await?;
        pod.line("bulk-server", "listening on").await?;
        pod.start("bulk-client", bulk, &["client", &at, &bytes, "--raw"])
            .await?;
        let elapsed = pod.line("bulk-client", "elapsed_ns=").await?;
        pod.finish("bulk-client").await?;
        pod.finish("bulk-server").await?;
        let ns: f64 = elapsed
            .trim_start_matches("elapsed_ns=")
            .parse()
            .with_context(|| format!("bad elapsed line {elapsed:?}"))?;
        rates.push(cli.bytes as f64 / (ns / 1e9));
    }
    let stats = pod.sandbox.network().stats();
    if virtual_loopback {
        ensure!(
            stats.connections == 1 + rates.len() as u64,
            "not every connection was virtual: {stats:?}"
        );
    } else {
        ensure!(
            stats.connections == 0,
            "a connection was virtual: {stats:?}"
        );
    }
    pod.sandbox.delete().await?;
    Ok(Figures {
        rtt_p50: field("p50_ns")?,
        rtt_p90: field("p90_ns")?,
        rtt_p99: field("p99_ns")?,
        throughput: median(rates),
    })
}

/// A port free on the host's loopback right now (for the kernel case; harmless for the
/// virtual one).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// This process against a child process of this binary.
fn native_case(cli: &Cli) -> Result<Figures> {
    let (mut stream, mut child) = spawn_peer("pingpong")?;
    let mut samples = Samples::default();
    let mut byte = [7u8; 1];
    for _ in 0..cli.rounds {
        let start = Instant::now();
        stream.write_all(&byte)?;
        stream.read_exact(&mut byte)?;
        samples.push(start.elapsed());
    }
    drop(stream);
    ensure!(child.wait()?.success(), "pingpong peer failed");
    let rtt = samples.summary();

    let mut rates = Vec::new();
    let buf = vec![0x5au8; CHUNK];
    for _ in 0..cli.bulk_runs.max(1) {
        let (mut stream, mut child) = spawn_peer("bulk")?;
        let start = Instant::now();
        let mut left = cli.bytes;
        while left > 0 {
            let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
            stream.write_all(&buf[..n])?;
            left -= n as u64;
        }
        stream.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest)?;
        let elapsed = start.elapsed();
        ensure!(child.wait()?.success(), "bulk peer failed");
        rates.push(cli.bytes as f64 / elapsed.as_secs_f64());
    }
    Ok(Figures {
        rtt_p50: rtt.p50,
        rtt_p90: rtt.p90,
        rtt_p99: rtt.p99,
        throughput: median(rates),
    })
}

/// Starts a child process serving `mode` and connects to it.
fn spawn_peer(mode: &str) -> Result<(TcpStream, std::process::Child)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--peer", mode])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("peer stdout")?;
    let mut port = String::new();
    BufReader::new(stdout).read_line(&mut port)?;
    let port: u16 = port.trim().parse().context("peer port")?;
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    Ok((stream, child))
}

/// The child's side: one connection, echoed byte by byte (`pingpong`) or read to its end
/// (`bulk`).
fn native_peer(mode: &str) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let (mut stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    match mode {
        "pingpong" => {
            let mut byte = [0u8; 1];
            while stream.read(&mut byte)? == 1 {
                stream.write_all(&byte)?;
            }
        }
        "bulk" => {
            let mut buf = vec![0u8; CHUNK];
            while stream.read(&mut buf)? > 0 {}
        }
        other => bail!("unknown peer mode {other:?}"),
    }
    Ok(())
}
