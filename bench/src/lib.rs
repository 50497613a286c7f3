//! wasmpod's benchmarks, each reported next to a baseline measured in the same run.
//!
//! The pod start benchmark ([`run`], binary `pod-start`) starts a parsed 2-container pod (a
//! wasip1 module and a wasip2 component) through the public sandbox API until both containers
//! are running, and compares it with plain wasmtime instantiating the same two guests
//! ([`bare`]), and a warm start with cold (empty compile cache) and disk-warm (fresh engine,
//! populated cache) ones. See `bench/README.md` for the command, what each row measures and the
//! latest figures. Speed goals are reported, never asserted.

pub mod bare;
pub mod engine_run;
pub mod pod;
pub mod profile;
pub mod stats;

/// A static native program (`source`, compiled with rustc) as image `name`, imported into
/// `containerd`'s `namespace`: what runc runs next to wasmpod in the containerd benchmarks.
/// Its entrypoint is `/PROGRAM`.
pub fn native_image(
    containerd: &wasmpod_tests::containerd::Containerd,
    namespace: &str,
    name: &str,
    program: &str,
    source: &str,
) -> String {
    let dir = containerd.dir().join("native");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join(format!("{program}.rs"));
    std::fs::write(&file, source).expect("write");
    let binary = dir.join(program);
    let built = std::process::Command::new("rustc")
        .args(["-O", "-C", "target-feature=+crt-static", "-o"])
        .arg(&binary)
        .arg(&file)
        .status()
        .expect("run rustc");
    assert!(built.success(), "rustc {program} failed");
    let image = wasmpod::oci::OciImage::new(name)
        .expect("name")
        .file(program, std::fs::read(&binary).expect("read"), 0o755)
        .entrypoint([format!("/{program}")]);
    containerd.import(namespace, &image)
}

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use wasmpod::{Engine, EngineConfig};

use crate::bare::Bare;
use crate::engine_run::EngineRun;
use crate::pod::{EngineSource, Order, PodStarter, Steps};
use crate::profile::Piece;
use crate::stats::{Samples, Summary, fmt_duration, ratio};

/// How long a guest may take to print or to end before a start counts as failed. A deadline
/// against hangs, not a speed check.
pub const FIRST_OUTPUT_DEADLINE: Duration = Duration::from_secs(30);

/// The warm start's goal: its p50 at most this long.
pub const GOAL_P50: Duration = Duration::from_millis(1);
/// The warm start's goal: its p50 at most this many times the bare instantiate's.
pub const GOAL_RATIO: f64 = 1.5;
/// The disk-warm start's goal (a new pod process's first start on a warm compile cache): its
/// p50 at most this long.
pub const GOAL_DISK_P50: Duration = Duration::from_micros(2500);

/// The benchmarked pod: two containers that print a line as their first action and exit.
pub fn manifest() -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: bench
spec:
  restartPolicy: Never
  containers:
  - name: p1
    image: {p1}
  - name: p2
    image: {p2}
",
        p1 = wasmpod_guests::HELLO_P1,
        p2 = wasmpod_guests::HELLO_P2,
    )
}

/// How many times each case runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Warm starts and bare starts (interleaved, each order half the time).
    pub iters: usize,
    /// Untimed warm and bare starts before measuring.
    pub warmup: usize,
    /// Starts on a fresh engine with a populated cache.
    pub disk_iters: usize,
    /// Starts on a fresh engine with an empty cache (each compiles both guests).
    pub cold_iters: usize,
    /// Repetitions of each piece of a warm start timed alone ([`profile`]).
    pub profile_iters: usize,
    /// Where pod directories and compile caches are created (a temporary directory inside it).
    pub scratch: PathBuf,
    /// Tokio worker threads; `None` is tokio's default (one per core), as `wasmpod run`.
    pub workers: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            iters: 1000,
            warmup: 50,
            disk_iters: 50,
            cold_iters: 10,
            profile_iters: 200,
            scratch: default_scratch(),
            workers: None,
        }
    }
}

/// Where pod directories go by default: `$XDG_RUNTIME_DIR`, else `/dev/shm`, else the temp
/// dir. wasmpod keeps pods under `/run/wasmpod` or `$XDG_RUNTIME_DIR`, which are tmpfs on a
/// usual Linux host; `/dev/shm` is the tmpfs that exists everywhere.
pub fn default_scratch() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/dev/shm")])
        .find(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// The file system type of the mount holding `path` (from `/proc/mounts`), if known.
pub fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Plain wasmtime: both guests instantiated until both wrote.
    pub bare: Samples,
    /// wasmpod's `Engine::run` on both images, no sandbox.
    pub engine_run: Samples,
    /// wasmpod, warm engine, containers created and started one after the other.
    pub warm: Samples,
    /// wasmpod, warm engine, each container created and started on its own task.
    pub warm_concurrent: Samples,
    /// wasmpod, fresh engine on a populated cache.
    pub disk: Samples,
    /// wasmpod, fresh engine on an empty cache.
    pub cold: Samples,
    /// The steps of every sequential warm start.
    pub warm_steps: Vec<Steps>,
    /// The steps of every disk-warm start.
    pub disk_steps: Vec<Steps>,
    /// The steps of every cold start.
    pub cold_steps: Vec<Steps>,
    /// Pieces of a warm start timed alone.
    pub pieces: Vec<Piece>,
}

/// Runs every case on its own tokio runtime (multi-threaded, as `wasmpod run`'s).
pub fn run(options: &Options) -> Result<Report> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(workers) = options.workers {
        builder.worker_threads(workers);
    }
    let runtime = builder.build().context("tokio runtime")?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: &Options) -> Result<Report> {
    let scratch = tempfile::Builder::new()
        .prefix("wasmpod-bench-")
        .tempdir_in(&options.scratch)
        .with_context(|| format!("temporary directory in {}", options.scratch.display()))?;
    let spec = wasmpod::spec::parse_pod(&manifest(), Path::new("/"))?;
    ensure!(spec.containers.len() == 2, "the pod has two containers");
    let pods = PodStarter::new(spec, &scratch.path().join("pods"));
    let warm_cache = scratch.path().join("cache");
    // Engines as a pod process (wasmpod run, the shim) makes them.
    let config = |cache_dir: PathBuf| EngineConfig {
        cache_dir: Some(cache_dir),
        ..EngineConfig::for_one_pod()
    };

    // Warm: one engine, images compiled into `warm_cache` and loaded before timing.
    let engine = Engine::new(config(warm_cache.clone()))?;
    for container in &pods.spec().containers {
        engine.load_image(&container.module)?;
    }
    let before = engine.cache().stats();
    ensure!(
        before.compiled == 2,
        "setup compiles both guests: {before:?}"
    );
    let bare = Bare::new(
        &pods.spec().containers[0].module,
        &pods.spec().containers[1].module,
        &pods.spec().hostname,
    )?;

    let engine_run = EngineRun::new(&engine, pods.spec())?;

    let mut report = Report::default();
    // Each round runs every case once, the order rotating from round to round, so that drift
    // in the machine's speed and whatever one case leaves behind hit every case alike.
    const CASES: usize = 4;
    for round in 0..options.warmup + options.iters {
        let measured = round >= options.warmup;
        for case in (0..CASES).map(|k| (round + k) % CASES) {
            match case {
                0 => {
                    let took = bare.start_once().await?;
                    if measured {
                        report.bare.push(took);
                    }
                }
                1 => {
                    let took = engine_run.start_once(&engine).await?;
                    if measured {
                        report.engine_run.push(took);
                    }
                }
                2 => {
                    let steps = pods
                        .start_once(EngineSource::Warm(&engine), Order::Sequential)
                        .await?;
                    if measured {
                        report.warm.push(steps.total);
                        report.warm_steps.push(steps);
                    }
                }
                _ => {
                    let steps = pods
                        .start_once(EngineSource::Warm(&engine), Order::Concurrent)
                        .await?;
                    if measured {
                        report.warm_concurrent.push(steps.total);
                    }
                }
            }
        }
    }
    let modules: Vec<(&str, &Path)> = (pods.spec().containers.iter())
        .map(|c| (c.name.as_str(), c.module.as_path()))
        .collect();
    report.pieces =
        profile::pieces(&engine, &modules, scratch.path(), options.profile_iters).await?;
    let after = engine.cache().stats();
    ensure!(
        after.compiled == before.compiled && after.disk_hits == before.disk_hits,
        "warm starts load images from memory only: {before:?} then {after:?}"
    );
    drop((bare, engine_run, engine));

    for _ in 0..options.disk_iters {
        let steps = pods
            .start_once(
                EngineSource::Fresh(config(warm_cache.clone())),
                Order::Sequential,
            )
            .await?;
        let stats = steps.cache.unwrap_or_default();
        ensure!(
            stats.disk_hits == 2 && stats.compiled == 0,
            "a disk-warm start loads both guests from disk: {stats:?}"
        );
        report.disk.push(steps.total);
        report.disk_steps.push(steps);
    }
    for i in 0..options.cold_iters {
        let cache = scratch.path().join(format!("cold-cache-{i}"));
        let steps = pods
            .start_once(
                EngineSource::Fresh(config(cache.clone())),
                Order::Sequential,
            )
            .await?;
        let stats = steps.cache.unwrap_or_default();
        ensure!(
            stats.compiled == 2,
            "a cold start compiles both guests: {stats:?}"
        );
        std::fs::remove_dir_all(&cache)?;
        report.cold.push(steps.total);
        report.cold_steps.push(steps);
    }
    Ok(report)
}

impl Report {
    /// The warm start's p50 and p50 ratio to bare, and whether both goals are met.
    pub fn goal(&self) -> (Duration, f64, bool) {
        let warm = self.warm.summary().p50;
        let times = ratio(warm, self.bare.summary().p50);
        (warm, times, warm <= GOAL_P50 && times <= GOAL_RATIO)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [bare, engine_run, warm, concurrent, disk, cold] = [
            &self.bare,
            &self.engine_run,
            &self.warm,
            &self.warm_concurrent,
            &self.disk,
            &self.cold,
        ]
        .map(Samples::summary);
        writeln!(
            f,
            "pod start: parsed PodSpec -> both containers running (first output), 2 containers"
        )?;
        writeln!(
            f,
            "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
            "case", "n", "min", "p50", "p90", "p99"
        )?;
        for (name, s) in [
            ("bare wasmtime (InstancePre/CommandPre)", bare),
            ("wasmpod Engine::run only (no sandbox)", engine_run),
            ("wasmpod warm (engine + images in memory)", warm),
            ("wasmpod warm, containers on own tasks", concurrent),
            ("wasmpod disk-warm (new engine, full cache)", disk),
            ("wasmpod cold (new engine, empty cache)", cold),
        ] {
            if s.n > 0 {
                row(f, name, s)?;
            }
        }
        writeln!(f)?;
        writeln!(f, "{:<44} {:>9} {:>9}", "ratio", "p50", "p90")?;
        for (name, a, b) in [
            ("wasmpod warm / bare", warm, bare),
            ("  Engine::run only / bare", engine_run, bare),
            ("  wasmpod warm / Engine::run only", warm, engine_run),
            ("wasmpod warm (own tasks) / bare", concurrent, bare),
            ("disk-warm / warm", disk, warm),
            ("cold / warm", cold, warm),
            ("cold / disk-warm", cold, disk),
        ] {
            if a.n > 0 && b.n > 0 {
                writeln!(
                    f,
                    "{:<44} {:>8.1}x {:>8.1}x",
                    name,
                    ratio(a.p50, b.p50),
                    ratio(a.p90, b.p90)
                )?;
            }
        }
        let (p50, times, met) = self.goal();
        writeln!(
            f,
            "\ngoal (warm p50 <= {}, <= {GOAL_RATIO}x bare): {} (p50 {} = {:.0}% of the goal; {times:.1}x bare = {:.0}% of the goal)",
            fmt_duration(GOAL_P50),
            if met { "met" } else { "MISSED" },
            fmt_duration(p50),
            100.0 * ratio(p50, GOAL_P50),
            100.0 * times / GOAL_RATIO,
        )?;
        if disk.n > 0 {
            writeln!(
                f,
                "goal (disk-warm p50 <= {}): {} (p50 {} = {:.0}% of the goal)",
                fmt_duration(GOAL_DISK_P50),
                if disk.p50 <= GOAL_DISK_P50 {
                    "met"
                } else {
                    "MISSED"
                },
                fmt_duration(disk.p50),
                100.0 * ratio(disk.p50, GOAL_DISK_P50),
            )?;
        }
        if !self.pieces.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
                "pieces of a warm start, timed alone", "n", "min", "p50", "p90", "p99"
            )?;
            for piece in &self.pieces {
                row(f, &format!("  {}", piece.name), piece.samples.summary())?;
            }
        }
        for (title, steps) in [
            ("warm", &self.warm_steps),
            ("disk-warm", &self.disk_steps),
            ("cold", &self.cold_steps),
        ] {
            if !steps.is_empty() {
                writeln!(f)?;
                step_table(f, title, steps)?;
            }
        }
        Ok(())
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, s: Summary) -> fmt::Result {
    writeln!(
        f,
        "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
        name,
        s.n,
        fmt_duration(s.min),
        fmt_duration(s.p50),
        fmt_duration(s.p90),
        fmt_duration(s.p99)
    )
}

/// Per-step percentiles of sequential starts.
fn step_table(f: &mut fmt::Formatter<'_>, title: &str, steps: &[Steps]) -> fmt::Result {
    let column = |pick: &dyn Fn(&Steps) -> Duration| {
        let mut samples = Samples::default();
        for s in steps {
            samples.push(pick(s));
        }
        samples.summary()
    };
    writeln!(
        f,
        "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
        format!("{title} start, per step"),
        "n",
        "min",
        "p50",
        "p90",
        "p99"
    )?;
    let containers = steps.first().map_or(0, |s| s.create.len());
    let mut rows: Vec<(String, Summary)> = Vec::new();
    if steps.iter().any(|s| s.engine.is_some()) {
        rows.push((
            "  Engine::new".into(),
            column(&|s| s.engine.unwrap_or_default()),
        ));
    }
    rows.push(("  images (load_image each)".into(), column(&|s| s.images)));
    rows.push(("  Sandbox::create".into(), column(&|s| s.sandbox)));
    for i in 0..containers {
        rows.push((format!("  create_container #{i}"), column(&|s| s.create[i])));
    }
    for i in 0..containers {
        rows.push((format!("  start_container #{i}"), column(&|s| s.start[i])));
    }
    rows.push((
        "  last start -> last first output".into(),
        column(&|s| s.output),
    ));
    rows.push(("  total".into(), column(&|s| s.total)));
    for (name, s) in rows {
        row(f, &name, s)?;
    }
    Ok(())
}
