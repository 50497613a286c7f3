//! `wasmpod`: run Kubernetes Pod manifests of WebAssembly modules.
//!
//! Exit codes: 0 the pod succeeded (or the command did what it was asked); 1 the pod failed;
//! 2 bad input (manifest, module, arguments), nothing started; 3 the pod does not fit the node,
//! nothing started; 125 wasmpod itself failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use wasmpod::admission::{Node, Quantities};
use wasmpod::host::{self, HostConfig, NetnsMode, PodIp};
use wasmpod::logs::LogStream;
use wasmpod::pod::PodDir;
use wasmpod::runner::{self, PodProcess, Prepare, RunOptions, Shutdown};
use wasmpod::status::{Phase, PodStatus};
use wasmpod::{Engine, EngineConfig, ErrorKind, control};

#[derive(Parser)]
#[command(
    name = "wasmpod",
    version,
    about = "Run Kubernetes pods of WebAssembly modules"
)]
struct Cli {
    /// Compile cache directory [default: $XDG_CACHE_HOME/wasmpod]
    #[arg(long, global = true, env = "WASMPOD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Log wasmpod's own debug messages to stderr (same as RUST_LOG=wasmpod=debug)
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pod in the foreground until it ends (Ctrl-C stops it)
    Run(RunArgs),
    /// Check a manifest without running it
    Validate {
        /// The Pod manifest (YAML or JSON)
        manifest: PathBuf,
    },
    /// Compile modules into the cache, so pods start warm
    Compile {
        /// `.wasm` files
        #[arg(required = true)]
        modules: Vec<PathBuf>,
    },
    /// List pods (run by `wasmpod run`, detached or not), as `kubectl get pods` does
    Ps {
        #[command(flatten)]
        state: StateArgs,
        /// Only this namespace's pods
        #[arg(
            short,
            long,
            default_value = "default",
            conflicts_with = "all_namespaces"
        )]
        namespace: String,
        /// Every namespace's pods (with a NAMESPACE column)
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// `wide` adds each pod's process and directory; `json` prints a `kind: List` of the
        /// pods (`kubectl get pods -o json`)
        #[arg(short, long, value_enum)]
        output: Option<PsOutput>,
    },
    /// Stop a running pod gracefully (each container's preStop hook and termination request,
    /// then a hard stop when its grace period is over) and wait until it ended
    Stop {
        /// The pod's name
        pod: String,
        #[command(flatten)]
        state: StateArgs,
        /// Its namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Override the pod's terminationGracePeriodSeconds (e.g. 5s; 0s kills at once)
        #[arg(long, value_parser = parse_duration)]
        grace_period: Option<Duration>,
    },
    /// Remove a pod that ended: its directory (logs included)
    Rm {
        /// The pod's name
        pod: String,
        #[command(flatten)]
        state: StateArgs,
        /// Its namespace
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Kill the pod first if it still runs
        #[arg(short, long)]
        force: bool,
    },
    /// Print a container's logs
    Logs {
        /// The pod: its name, or its directory (`wasmpod run` prints it)
        pod: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        /// The pod's namespace, when it is named
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// The container
        #[arg(short, long)]
        container: String,
        /// Which run of the container (its restart count) [default: the latest]
        #[arg(long)]
        attempt: Option<u32>,
        /// Prefix each line with its timestamp
        #[arg(long)]
        timestamps: bool,
    },
    /// Build OCI images of modules, for containerd (`ctr images import`) without a registry
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Write an OCI image archive whose entrypoint is the module
    Build {
        /// The `.wasm` module
        module: PathBuf,
        /// The archive to write
        #[arg(short, long)]
        output: PathBuf,
        /// The image's name (`hello` means `docker.io/library/hello:latest`)
        #[arg(long)]
        name: String,
        /// Ship the module as a Wasm OCI layer (the layer is the module, no rootfs) instead
        /// of a file in a tar layer
        #[arg(long)]
        wasm_layer: bool,
    },
}

/// Where pod directories are.
#[derive(clap::Args)]
struct StateArgs {
    /// Where pod directories (volumes, logs) are kept [default: /run/wasmpod as root, else
    /// $XDG_RUNTIME_DIR/wasmpod]
    #[arg(long, env = "WASMPOD_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

impl StateArgs {
    fn dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(runner::default_state_dir)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PsOutput {
    Wide,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The Pod manifest (YAML or JSON)
    manifest: PathBuf,
    /// Run the pod in the background: print its name once it started and return (`wasmpod
    /// ps`, `logs`, `stop` and `rm` manage it)
    #[arg(short, long, conflicts_with = "output")]
    detach: bool,
    /// Final output: `text` prints status lines as they change; `json` prints the final
    /// Kubernetes PodStatus on stdout (logs and status lines then go to stderr)
    #[arg(short, long, value_enum)]
    output: Option<Output>,
    #[command(flatten)]
    state: StateArgs,
    /// First restart back-off delay; doubles up to 30x (Kubernetes: 10s)
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    backoff_base: Duration,
    /// Remove the pod directory (logs included) when the pod ends
    #[arg(long)]
    rm: bool,
    /// Memory the node offers pods, as a Kubernetes quantity (e.g. 3Gi) [default: this machine's]
    #[arg(long, value_parser = |q: &str| wasmpod::spec::parse_memory_bytes(q))]
    node_memory: Option<u64>,
    /// CPU the node offers pods, as a Kubernetes quantity (e.g. 2 or 1500m) [default: this machine's]
    #[arg(long, value_parser = |q: &str| wasmpod::spec::parse_cpu_millis(q))]
    node_cpu: Option<u64>,
    /// The pod's network namespace: `new` (only `lo`; the default as root), `host`, or the path
    /// of an existing one (/var/run/netns/NAME, /proc/PID/ns/net)
    #[arg(long)]
    netns: Option<String>,
    /// Give the pod this link-local IP on a veth pair to the host (e.g. 169.254.10.2; the host
    /// end takes .1 of the /30); needs `--netns new`
    #[arg(long, value_parser = |ip: &str| PodIp::parse(ip))]
    pod_ip: Option<PodIp>,
    /// Where the pod's cgroup goes, relative to the cgroup2 mount
    #[arg(long, default_value = "wasmpod")]
    cgroup_parent: PathBuf,
    /// Do not place the pod in a cgroup
    #[arg(long)]
    no_cgroup: bool,
    /// Memory the pod process may use beyond its containers' limits, in its cgroup's memory.max
    #[arg(long, default_value = "64Mi", value_parser = |q: &str| wasmpod::spec::parse_memory_bytes(q))]
    memory_overhead: u64,
    /// Override the pod's terminationGracePeriodSeconds (e.g. 5s)
    #[arg(long, value_parser = parse_duration)]
    grace_period: Option<Duration>,
    /// What guests may reach: `pod` (the pod's loopback and beyond, as in Kubernetes) or
    /// `pod-only` (only the pod: no outbound connections, UDP sends or name lookups)
    #[arg(long, default_value = "pod", value_parser = |p: &str| p.parse::<wasmpod::net::NetworkPolicy>())]
    network: wasmpod::net::NetworkPolicy,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasmpod: {}", one_line(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { manifest } => {
            let spec = wasmpod::spec::parse_pod_file(&manifest)?;
            println!(
                "pod/{} is valid: {} init container(s), {} container(s)",
                spec.name,
                spec.init_containers.len(),
                spec.containers.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Compile { modules } => {
            let engine = engine(cli.cache_dir)?;
            for module in &modules {
                let kind = engine.precompile(module)?;
                println!("{}: {} compiled", module.display(), kind.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs {
            pod,
            state,
            namespace,
            container,
            attempt,
            timestamps,
        } => {
            // A name (no `/`) is looked up among the pods; anything else is a directory.
            let dir = match pod.to_str().filter(|name| !name.contains('/')) {
                Some(name) => control::find(&state.dir(), &namespace, name)?.dir,
                None => PodDir::new(&pod),
            };
            print_logs(&dir, &container, attempt, timestamps)
        }
        Command::Run(args) if args.detach && std::env::var_os(DETACHED).is_none() => detach(&args),
        Command::Run(args) => run(cli.cache_dir, args),
        Command::Ps {
            state,
            namespace,
            all_namespaces,
            output,
        } => ps(
            &state.dir(),
            (!all_namespaces).then_some(namespace.as_str()),
            output,
        ),
        Command::Stop {
            pod,
            state,
            namespace,
            grace_period,
        } => {
            let found = control::find(&state.dir(), &namespace, &pod)?;
            control::stop(&found, grace_period)?;
            println!("{pod}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm {
            pod,
            state,
            namespace,
            force,
        } => {
            let mut found = control::find(&state.dir(), &namespace, &pod)?;
            if force && found.record.is_running() {
                match control::stop(&found, Some(Duration::ZERO))? {
                    Some(record) => found.record = record,
                    // It removed itself as it ended (`run --rm`).
                    None => {
                        println!("{pod}");
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            control::remove(&found)?;
            println!("{pod}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Image(ImageCommand::Build {
            module,
            output,
            name,
            wasm_layer,
        }) => {
            let image = if wasm_layer {
                wasmpod::oci::OciImage::wasm_layer(&module, &name)
            } else {
                wasmpod::oci::OciImage::wasm(&module, &name)
            };
            let built = image.and_then(|image| Ok((image.write_archive(&output)?, image.name)));
            match built {
                Ok((digest, name)) => {
                    println!("{}: {name} ({digest})", output.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::NotFound) => {
                    eprintln!("wasmpod: {e}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Set in the environment of the pod process `wasmpod run -d` starts: it is the detached one.
const DETACHED: &str = "WASMPOD_DETACHED_CHILD";

/// `wasmpod run -d`: the manifest is checked here, then the same command runs again as a
/// process of its own session (the pod process), which says `started` on its stdout once the
/// pod's sandbox exists; then this prints the pod's name and returns. A pod process that fails
/// before that exits with its error on its stderr, which becomes ours, and its exit code.
fn detach(args: &RunArgs) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead as _, Read as _};
    use std::process::Stdio;
    let spec = wasmpod::spec::parse_pod_file(&args.manifest)?;
    let exe = std::env::current_exe().context("find wasmpod's own executable")?;
    let mut child = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DETACHED, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start the pod process")?;
    let mut said = String::new();
    if let Some(stdout) = child.stdout.take() {
        std::io::BufReader::new(stdout)
            .read_line(&mut said)
            .context("read from the pod process")?;
    }
    if said.trim_end() == "started" {
        println!("{}", spec.name);
        return Ok(ExitCode::SUCCESS);
    }
    let mut error = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut error);
    }
    let status = child.wait().context("wait for the pod process")?;
    eprint!("{error}");
    let code = status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(125);
    Ok(ExitCode::from(code))
}

/// The detached pod process, once its pod's sandbox exists: tells `wasmpod run -d` it started,
/// then leaves the terminal's pipes (stdout to /dev/null, stderr to the pod's process log).
fn detached_started(dir: &PodDir) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(b"started\n")?;
    stdout.flush()?;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.process_log())?;
    rustix::stdio::dup2_stdout(&null)?;
    rustix::stdio::dup2_stderr(&log)?;
    Ok(())
}

/// `wasmpod run`: the pod process is prepared (nothing is made before the manifest, admission
/// and images passed), run in the foreground, and torn down whatever happened.
fn run(cache_dir: Option<PathBuf>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let detached = args.detach;
    if detached {
        // A session of its own: the terminal's Ctrl-C and hangup are not the pod's.
        rustix::process::setsid().context("start a session for the detached pod")?;
    }
    let json = args.output == Some(Output::Json);
    let spec = wasmpod::spec::parse_pod_file(&args.manifest)?;
    let engine = engine(cache_dir)?;
    let mut prepare = Prepare::new(args.state.dir());
    prepare.host = host_config(&args, &spec)?;
    prepare.node = Some(node(&args));
    let unconfined = prepare.host.is_none();
    let process = PodProcess::prepare(&engine, spec, prepare)?;
    let console = Console::new(json);
    if unconfined {
        console
            .note("wasmpod: not running as root: the pod gets no cgroup and no network namespace");
    }
    for cleaned in process.recovered() {
        console.note(&format!(
            "cleaned up after a crashed pod in {}",
            cleaned.display()
        ));
    }
    for warning in process.warnings() {
        console.note(&format!("wasmpod: {warning}"));
    }

    let console_status = console.clone();
    let console_log = console.clone();
    let mut options = RunOptions {
        backoff_base: args.backoff_base,
        grace_period: args.grace_period,
        follow_signals: true,
        on_status: Some(Arc::new(move |status: &PodStatus| {
            console_status.status(status)
        })),
        on_log: Some(Arc::new(
            move |container: &str, stream, line: &str, _partial| {
                console_log.log(container, stream, line)
            },
        )),
        ..RunOptions::default()
    };
    options.network.policy = args.network;
    if detached {
        // Nobody watches: the pod's output is in its log files, its status in its record.
        options.on_status = None;
        options.on_log = None;
        let dir = process.dir().clone();
        options.on_sandbox = Some(Arc::new(move |_: &wasmpod::pod::Sandbox| {
            if let Err(error) = detached_started(&dir) {
                tracing::warn!(%error, "cannot detach from the terminal");
            }
        }));
    }
    let finished = process.run_to_end(options, Shutdown::new(), args.rm)?;
    if let Some(error) = &finished.host_error {
        console.note(&format!("wasmpod: host layer teardown: {error}"));
    }
    if let Some(dir) = &finished.dir {
        console.note(&format!("pod directory: {}", dir.path().display()));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&finished.status.to_json())?
        );
    }
    Ok(if finished.status.phase == Phase::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `wasmpod ps`: the pods with a record under `state_dir` (of `namespace`, or all), as
/// `kubectl get pods` shows them.
fn ps(
    state_dir: &Path,
    namespace: Option<&str>,
    output: Option<PsOutput>,
) -> anyhow::Result<ExitCode> {
    let pods: Vec<control::FoundPod> = control::list(state_dir)
        .into_iter()
        .filter(|pod| namespace.is_none_or(|ns| pod.record.metadata.namespace == ns))
        .collect();
    if output == Some(PsOutput::Json) {
        let items: Vec<&control::PodRecord> = pods.iter().map(|pod| &pod.record).collect();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if pods.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
            None => eprintln!("No resources found"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = jiff::Timestamp::now();
    let mut rows = vec![];
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if namespace.is_none() {
        header.insert(0, "NAMESPACE");
    }
    if output == Some(PsOutput::Wide) {
        header.extend(["PID", "POD DIR"]);
    }
    rows.push(header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for pod in &pods {
        let record = &pod.record;
        let age = now.duration_since(record.metadata.creation_timestamp);
        let mut row = vec![
            record.metadata.name.clone(),
            record.wasmpod.ready.clone(),
            record.summary().to_owned(),
            record.wasmpod.restarts.to_string(),
            human_age(age.unsigned_abs()),
        ];
        if namespace.is_none() {
            row.insert(0, record.metadata.namespace.clone());
        }
        if output == Some(PsOutput::Wide) {
            let pid = if record.is_running() {
                record.wasmpod.pid.to_string()
            } else {
                "-".into()
            };
            row.extend([pid, pod.dir.path().display().to_string()]);
        }
        rows.push(row);
    }
    print!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// `rows` in columns three spaces apart, as kubectl prints them.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A pod's age as kubectl prints it (`45s`, `3m12s`, `25m`, `5h10m`, `3d4h`, `12d`).
fn human_age(age: Duration) -> String {
    let s = age.as_secs();
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        () if s < 120 => format!("{s}s"),
        () if m < 10 => format!("{m}m{}s", s % 60),
        () if m < 180 => format!("{m}m"),
        () if h < 8 => format!("{h}h{}m", m % 60),
        () if h < 48 => format!("{h}h"),
        () if h < 192 => format!("{d}d{}h", h % 24),
        () => format!("{d}d"),
    }
}

/// The node the pod must fit: this machine, or what `--node-memory` / `--node-cpu` say.
fn node(args: &RunArgs) -> Arc<Node> {
    if args.node_memory.is_none() && args.node_cpu.is_none() {
        return Node::this_machine();
    }
    let machine = Node::this_machine().capacity();
    Node::new(Quantities {
        memory: args.node_memory.unwrap_or(machine.memory),
        cpu_millis: args.node_cpu.unwrap_or(machine.cpu_millis),
    })
}

/// The host layer the flags ask for; `None` without root (no cgroup, no namespace).
fn host_config(args: &RunArgs, spec: &wasmpod::PodSpec) -> anyhow::Result<Option<HostConfig>> {
    let netns = match args.netns.as_deref() {
        None | Some("new") => NetnsMode::New,
        Some("host") => NetnsMode::Host,
        Some(path) => NetnsMode::Path(PathBuf::from(path)),
    };
    if !host::privileged() {
        if args.netns.as_deref().is_some_and(|n| n != "host") || args.pod_ip.is_some() {
            anyhow::bail!("--netns and --pod-ip need root");
        }
        return Ok(None);
    }
    Ok(Some(HostConfig {
        cgroup_parent: (!args.no_cgroup).then(|| args.cgroup_parent.clone()),
        limits: HostConfig::limits_for(spec, args.memory_overhead),
        netns,
        pod_ip: args.pod_ip,
    }))
}

/// Where status lines and prefixed guest output go.
#[derive(Clone)]
struct Console {
    /// With `-o json`, stdout is reserved for the final status.
    quiet_stdout: bool,
    last: Arc<Mutex<Option<String>>>,
}

impl Console {
    fn new(quiet_stdout: bool) -> Self {
        Console {
            quiet_stdout,
            last: Arc::default(),
        }
    }

    fn out(&self, stream: LogStream, line: &str) {
        let result = if stream == LogStream::Stdout && !self.quiet_stdout {
            writeln!(std::io::stdout().lock(), "{line}")
        } else {
            writeln!(std::io::stderr().lock(), "{line}")
        };
        drop(result);
    }

    fn log(&self, container: &str, stream: LogStream, line: &str) {
        self.out(stream, &format!("[{container}] {line}"));
    }

    fn note(&self, line: &str) {
        self.out(LogStream::Stderr, line);
    }

    /// Prints `kubectl get pods -w`-style lines, one per visible change.
    fn status(&self, status: &PodStatus) {
        let (ready, total) = status.ready();
        let age = jiff::Timestamp::now().duration_since(status.start_time);
        let key = format!(
            "{:<24} {:<7} {:<20} {:<9}",
            status.name,
            format!("{ready}/{total}"),
            status.summary(),
            status.restarts()
        );
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(key.as_str()) {
            return;
        }
        if last.is_none() {
            self.out(
                LogStream::Stdout,
                &format!(
                    "{:<24} {:<7} {:<20} {:<9} AGE",
                    "NAME", "READY", "STATUS", "RESTARTS"
                ),
            );
        }
        self.out(LogStream::Stdout, &format!("{key} {}s", age.as_secs()));
        *last = Some(key);
    }
}

fn print_logs(
    pod: &PodDir,
    container: &str,
    attempt: Option<u32>,
    timestamps: bool,
) -> anyhow::Result<ExitCode> {
    let pod_dir = pod.path();
    let attempt = match attempt {
        Some(n) => n,
        None => pod
            .log_attempts(container)
            .with_context(|| {
                format!(
                    "no logs for container {container:?} in {}",
                    pod_dir.display()
                )
            })?
            .into_iter()
            .max()
            .with_context(|| format!("no logs for container {container:?}"))?,
    };
    let path = pod.log_file(container, attempt);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for record in text.lines().filter_map(wasmpod::logs::LogRecord::parse) {
        if timestamps {
            write!(out, "{} ", record.time)?;
        }
        if record.partial {
            write!(out, "{}", record.content)?;
        } else {
            writeln!(out, "{}", record.content)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine of this process, which holds at most one pod.
fn engine(cache_dir: Option<PathBuf>) -> anyhow::Result<Engine> {
    let mut config = EngineConfig::for_one_pod();
    if cache_dir.is_some() {
        config.cache_dir = cache_dir;
    }
    Ok(Engine::new(config)?)
}

/// `10s`, `250ms`, `2m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 10s, 250ms, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {text:?}: use ms, s or m"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Bad input (a manifest, a module) exits 2; a pod that does not fit the node exits 3;
/// anything else is wasmpod's own failure.
fn exit_code(e: &anyhow::Error) -> u8 {
    // A pod not found, or refusing (running when removed): the caller's, as kubectl's 1.
    if let Some(e) = e.downcast_ref::<control::ControlError>() {
        return if e.kind() == ErrorKind::Internal {
            125
        } else {
            1
        };
    }
    if e.downcast_ref::<wasmpod::Error>()
        .is_some_and(|e| e.kind() == ErrorKind::ResourceExhausted)
    {
        return 3;
    }
    let bad_input = e
        .downcast_ref::<wasmpod::Error>()
        .map(|e| matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::NotFound))
        .unwrap_or(false)
        || e.downcast_ref::<wasmpod::SpecError>().is_some()
        || e.downcast_ref::<wasmpod::engine::ImageError>()
            .is_some_and(|e| matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::NotFound));
    if bad_input { 2 } else { 125 }
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn init_tracing(verbose: bool) {
    let default = if verbose {
        "wasmpod=debug"
    } else {
        "wasmpod=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let cases = [
            (45, "45s"),
            (119, "119s"),
            (192, "3m12s"),
            (25 * 60, "25m"),
            (5 * 3600 + 600, "5h10m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (12 * 86400, "12d"),
        ];
        for (seconds, age) in cases {
            assert_eq!(human_age(Duration::from_secs(seconds)), age, "{seconds}s");
        }
    }

    #[test]
    fn columns_are_three_spaces_apart() {
        let rows = [["NAME", "READY"], ["a-long-name", "1/1"]]
            .map(|row| row.map(String::from).to_vec())
            .to_vec();
        assert_eq!(table(&rows), "NAME          READY\na-long-name   1/1\n");
    }
}
