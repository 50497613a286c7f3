//! Running one guest to its end in a fresh `Store`: the verb every container start comes to.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmtime::{Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, WasiView};

use super::image::one_line;
use super::limits::{Limiter, OutOfMemory, Throttle, Usage};
use super::{Engine, Image, StoreData};
use crate::hostdir::HostDir;

/// Everything a guest sees of the world, apart from its stdio.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// Environment, in order.
    pub env: Vec<(String, String)>,
    /// Host directories preopened in the guest.
    pub preopens: Vec<Preopen>,
    /// The guest's initial working directory (an absolute guest path). Relative paths resolve
    /// against the preopen named `.`, which the caller adds (see
    /// [`Volumes::working_dir`](crate::volume::Volumes::working_dir)).
    pub cwd: Option<String>,
    /// Memory cap in bytes; `None` takes the engine's default.
    pub memory_limit: Option<u64>,
    /// CPU limit in millicores; `None` is unthrottled.
    pub cpu_limit_millis: Option<u64>,
    /// Where the guest's CPU time and memory are reported.
    pub usage: Arc<Usage>,
    /// The pod network the guest's sockets live in; the default is a network of its own.
    pub network: crate::net::Network,
    /// Where its name lookups go: its own `/etc/hosts` and `/etc/resolv.conf`; `None` asks
    /// the host's resolver.
    pub names: Option<crate::net::NameService>,
}

/// One host directory preopened at a guest path.
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The host directory, held open: the guest gets this directory, whatever its name
    /// leads to by now.
    pub dir: HostDir,
    /// Where the guest sees it (absolute; `/` allowed).
    pub guest: String,
    /// Writes are refused inside the guest.
    pub read_only: bool,
}

/// Where a guest's stdout and stderr go.
pub struct GuestIo {
    /// The guest's stdout.
    pub stdout: Box<dyn StdoutStream + Sync>,
    /// The guest's stderr.
    pub stderr: Box<dyn StdoutStream + Sync>,
}

impl GuestIo {
    /// Output that goes nowhere.
    pub fn discard() -> Self {
        GuestIo {
            stdout: Box::new(tokio::io::empty()),
            stderr: Box::new(tokio::io::empty()),
        }
    }
}

impl std::fmt::Debug for GuestIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestIo").finish_non_exhaustive()
    }
}

/// Why a guest ended, in Kubernetes' words (`containerStatuses[].state.terminated.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// Exit code 0.
    Completed,
    /// A non-zero exit code, a trap, or a hard stop (137).
    Error,
    /// A memory limit was hit.
    OOMKilled,
    /// The guest could not be started (instantiation failed).
    StartError,
}

impl ExitReason {
    /// The reason as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "Completed",
            ExitReason::Error => "Error",
            ExitReason::OOMKilled => "OOMKilled",
            ExitReason::StartError => "StartError",
        }
    }
}

/// How a guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code: the guest's own, 134 for a trap (as a native abort), 137 for a hard
    /// stop (as SIGKILL), 128 when it never started.
    pub code: i32,
    /// Kubernetes' reason.
    pub reason: ExitReason,
    /// A one-line explanation (the trap message), if any.
    pub message: Option<String>,
}

/// Exit code of a guest that trapped or panicked: 128 + SIGABRT, as `wasmtime run` reports it.
pub const EXIT_TRAP: i32 = 134;
/// Exit code of a guest stopped by the runtime: 128 + SIGKILL, as Kubernetes reports it.
pub const EXIT_KILLED: i32 = 137;
/// The most handles a guest may hold at once: open files and directories, streams, sockets,
/// pollables. Each open file is a host descriptor of the one pod process, so without a cap one
/// container could take every descriptor its neighbours and the runtime need; past it, the
/// opening call fails in the guest (and a guest that treats that as fatal ends itself).
pub const MAX_HANDLES: usize = 4096;

/// Exit code of a guest that could not start.
pub const EXIT_START_ERROR: i32 = 128;

impl ExitStatus {
    /// The status of a guest that returned `code` itself.
    pub fn exited(code: i32) -> Self {
        let reason = if code == 0 {
            ExitReason::Completed
        } else {
            ExitReason::Error
        };
        ExitStatus {
            code,
            reason,
            message: None,
        }
    }

    /// The status of a guest the runtime stopped.
    pub fn killed(message: &str) -> Self {
        ExitStatus {
            code: EXIT_KILLED,
            reason: ExitReason::Error,
            message: Some(message.to_owned()),
        }
    }

    /// The status of a guest that could not start.
    pub fn start_error(message: String) -> Self {
        ExitStatus {
            code: EXIT_START_ERROR,
            reason: ExitReason::StartError,
            message: Some(message),
        }
    }

    /// Whether the guest exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// What went wrong before or while running.
enum Failure {
    Start(wasmtime::Error),
    Run(wasmtime::Error),
}

impl Engine {
    /// Runs `image` to its end in a fresh store. `stop` ends it at once (the guest is dropped at
    /// its next yield, which the epoch guarantees within a tick even for a spinning guest).
    pub async fn run(
        &self,
        image: &Image,
        invocation: Invocation,
        io: GuestIo,
        stop: CancellationToken,
    ) -> ExitStatus {
        self.run_with_stdin(image, invocation, None, io, stop).await
    }

    /// [`Engine::run`] with `stdin` as the guest's stdin (else it reads as empty).
    pub async fn run_with_stdin(
        &self,
        image: &Image,
        invocation: Invocation,
        stdin: Option<Box<dyn StdinStream + Sync>>,
        io: GuestIo,
        stop: CancellationToken,
    ) -> ExitStatus {
        let usage = invocation.usage.clone();
        let mut store = match self.new_store(invocation, stdin, io) {
            Ok(store) => store,
            Err(e) => return ExitStatus::start_error(one_line(&e)),
        };

        let mut run = std::pin::pin!(run_image(image, &mut store));
        let metered = std::future::poll_fn(|cx| {
            let started = usage.poll_begins();
            let polled = run.as_mut().poll(cx);
            usage.poll_ends(started);
            polled
        });
        let outcome = tokio::select! {
            biased;
            () = stop.cancelled() => return ExitStatus::killed("stopped by wasmpod"),
            outcome = metered => outcome,
        };
        match outcome {
            Ok(code) => ExitStatus::exited(code),
            Err(Failure::Start(e) | Failure::Run(e)) if usage.oom_killed() => oom_killed(&e),
            Err(Failure::Start(e)) => ExitStatus::start_error(one_line(&e)),
            Err(Failure::Run(e)) => classify(&e),
        }
    }
}

impl Engine {
    /// A fresh store for one guest of `invocation`: its WASI context, memory limiter, network
    /// and HTTP handles, and the epoch callback.
    pub(super) fn new_store(
        &self,
        invocation: Invocation,
        stdin: Option<Box<dyn StdinStream + Sync>>,
        io: GuestIo,
    ) -> wasmtime::Result<Store<StoreData>> {
        let usage = invocation.usage.clone();
        let memory_limit = invocation
            .memory_limit
            .unwrap_or(self.inner.default_memory_limit);
        usage.set_cpu_limit(invocation.cpu_limit_millis);
        let net = invocation.network.container(invocation.names.clone());
        let http_hooks =
            super::outgoing::PodHttp::new(invocation.network.clone(), invocation.names.clone());
        let wasi = build_wasi(invocation, stdin, io)?;
        let data = StoreData {
            wasi,
            limiter: Limiter::new(memory_limit, usage.clone()),
            usage,
            throttle: None,
            net,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            http_hooks,
        };
        let mut store = Store::new(self.wasmtime(), data);
        store.limiter(|data| &mut data.limiter);
        if self.inner.epoch_interruption {
            store.epoch_deadline_callback(on_epoch);
            store.set_epoch_deadline(1);
        }
        Ok(store)
    }
}

/// At every epoch tick: yield to the scheduler (so no guest starves its neighbours), for as
/// long as the CPU throttle says when the guest used its share of the period.
fn on_epoch(mut ctx: StoreContextMut<'_, StoreData>) -> wasmtime::Result<UpdateDeadline> {
    let data = ctx.data_mut();
    // The limit is read at every tick: a resize takes effect at once.
    let Some(millis) = data.usage.cpu_limit() else {
        data.throttle = None;
        return Ok(UpdateDeadline::Yield(1));
    };
    let cpu = data.usage.cpu_time_now();
    let throttle = data
        .throttle
        .get_or_insert_with(|| Throttle::new(millis, cpu));
    throttle.set_limit(millis);
    let pause = throttle.pause(cpu);
    if !pause.is_zero() {
        return Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::time::sleep(pause)),
        ));
    }
    Ok(UpdateDeadline::Yield(1))
}

pub(super) fn oom_killed(e: &wasmtime::Error) -> ExitStatus {
    let message = e
        .chain()
        .find_map(|cause| cause.downcast_ref::<OutOfMemory>())
        .map_or_else(|| one_line(e), ToString::to_string);
    ExitStatus {
        code: EXIT_KILLED,
        reason: ExitReason::OOMKilled,
        message: Some(message),
    }
}

fn build_wasi(
    invocation: Invocation,
    stdin: Option<Box<dyn StdinStream + Sync>>,
    io: GuestIo,
) -> wasmtime::Result<wasmtime_wasi::p1::WasiP1Ctx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&invocation.argv)
        .envs(&invocation.env)
        .stdout(io.stdout)
        .stderr(io.stderr);
    if let Some(stdin) = stdin {
        builder.stdin(stdin);
    }
    invocation.network.configure_wasi(&mut builder);
    for preopen in &invocation.preopens {
        // The open directory itself, through its /proc/self/fd magic link: nothing a guest
        // did to the path it was opened by changes what is preopened.
        builder.preopened_dir(preopen.dir.proc_path(), &preopen.guest, perms_of(preopen))?;
    }
    if let Some(cwd) = &invocation.cwd {
        builder.initial_cwd(cwd).env("PWD", cwd);
    }
    let mut wasi = builder.build_p1();
    wasi.ctx().table.set_max_capacity(MAX_HANDLES);
    Ok(wasi)
}

fn perms_of(preopen: &Preopen) -> FsPerms {
    if preopen.read_only {
        FsPerms::ReadOnly
    } else {
        FsPerms::ReadWrite
    }
}

/// Instantiates and runs the command; `Ok(code)` when the guest returned or called `exit`.
async fn run_image(image: &Image, store: &mut Store<StoreData>) -> Result<i32, Failure> {
    let returned = match image {
        Image::Module(pre) => {
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Failure::Start)?;
            let start = instance
                .get_typed_func::<(), ()>(&mut *store, "_start")
                .map_err(Failure::Start)?;
            start.call_async(&mut *store, ()).await.map(|()| 0)
        }
        Image::Component(pre) => {
            let command = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Failure::Start)?;
            command
                .wasi_cli_run()
                .call_run(&mut *store)
                .await
                .map(|result| if result.is_ok() { 0 } else { 1 })
        }
        Image::Service(_) => {
            return Err(Failure::Start(wasmtime::format_err!(
                "a wasi:http service is served on a port, not run as a command"
            )));
        }
    };
    match returned {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => Err(Failure::Run(e)),
        },
    }
}

/// A run error: a trap (or a host error) is the container's `Error`, never the runtime's.
pub(super) fn classify(e: &wasmtime::Error) -> ExitStatus {
    // The root cause ("wasm `unreachable` instruction executed"); the backtrace context
    // around it stays out of the one-line status message.
    let message = e
        .root_cause()
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    ExitStatus {
        code: EXIT_TRAP,
        reason: ExitReason::Error,
        message: Some(message),
    }
}
