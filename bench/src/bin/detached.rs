//! `bench-detached`: pods managed from other processes. `wasmpod run -d` until the pod is Ready
//! (its record says so), `wasmpod ps` with 100 pods running, the memory of 100 detached pod
//! processes, `wasmpod rm -f` of each; next to the cost of starting the `wasmpod` binary at
//! all (`wasmpod --version`), measured in the same run.
//!
//! Run with `cargo build --release -p wasmpod-cli && cargo run --release -p wasmpod-bench
//! --bin bench-detached [-- --pods N]` (the `wasmpod` next to this binary is the one run).
//! As root the pods get their host layer (cgroup, network namespace), as `wasmpod run` gives
//! it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use wasmpod::control;
use wasmpod_bench::stats::{Samples, fmt_duration, ratio};

fn main() -> Result<()> {
    let pods: usize = match std::env::args().skip_while(|a| a != "--pods").nth(1) {
        Some(n) => n.parse().context("--pods N")?,
        None => 100,
    };
    let wasmpod = std::env::current_exe()?
        .parent()
        .context("the benchmark's directory")?
        .join("wasmpod");
    ensure!(
        wasmpod.is_file(),
        "{} is missing: cargo build --release -p wasmpod-cli",
        wasmpod.display()
    );
    let root = tempfile::tempdir()?;
    let state = root.path().join("state");
    let cli = Cli {
        wasmpod,
        state: state.clone(),
        cache: root.path().join("cache"),
    };
    let module = wasmpod_guests::GRACEFUL_P1;
    cli.ok(&["compile", module])?;

    let mut version = Samples::default();
    for _ in 0..20 {
        let began = Instant::now();
        cli.ok(&["--version"])?;
        version.push(began.elapsed());
    }

    let (mut detach, mut ready) = (Samples::default(), Samples::default());
    for i in 0..pods {
        let name = format!("pod-{i}");
        let manifest = root.path().join(format!("{name}.yaml"));
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes: [{{name: data, emptyDir: {{}}}}]\n  containers:\n  - name: app\n    image: {module}\n    args: [/data/out.txt]\n    volumeMounts: [{{name: data, mountPath: /data}}]\n"
            ),
        )?;
        let began = Instant::now();
        cli.ok(&["run", "-d", path(&manifest)?])?;
        detach.push(began.elapsed());
        wait_ready(&state, &name)?;
        ready.push(began.elapsed());
    }

    let (mut ps, mut ps_json) = (Samples::default(), Samples::default());
    for _ in 0..20 {
        let began = Instant::now();
        let listed = cli.ok(&["ps"])?;
        ps.push(began.elapsed());
        ensure!(
            listed.lines().count() == pods + 1,
            "ps listed {} lines",
            listed.lines().count()
        );
        let began = Instant::now();
        cli.ok(&["ps", "-o", "json"])?;
        ps_json.push(began.elapsed());
    }
    let running = control::list(&state);
    let (rss, pss) = running
        .iter()
        .map(|pod| memory_kib(pod.record.wasmpod.pid))
        .fold((0, 0), |(r, p), (rss, pss)| (r + rss, p + pss));

    let mut rm = Samples::default();
    for pod in &running {
        let began = Instant::now();
        cli.ok(&["rm", "-f", &pod.record.metadata.name])?;
        rm.push(began.elapsed());
    }
    ensure!(control::list(&state).is_empty(), "pods left behind");

    let base = version.summary().p50;
    println!("wasmpod --version (baseline): p50 {}", fmt_duration(base));
    for (what, samples) in [
        ("run -d returns", &detach),
        ("run -d -> Ready", &ready),
        ("ps", &ps),
        ("ps -o json", &ps_json),
        ("rm -f", &rm),
    ] {
        let s = samples.summary();
        println!(
            "{what}: p50 {} ({:.1}x baseline), p90 {}, p99 {} ({} runs)",
            fmt_duration(s.p50),
            ratio(s.p50, base),
            fmt_duration(s.p90),
            fmt_duration(s.p99),
            s.n
        );
    }
    println!(
        "{pods} detached pods: RSS {:.1} MiB, PSS {:.1} MiB in all; PSS {:.2} MiB per pod",
        rss as f64 / 1024.0,
        pss as f64 / 1024.0,
        pss as f64 / 1024.0 / pods as f64
    );
    Ok(())
}

/// The `wasmpod` binary with a private state and cache directory.
struct Cli {
    wasmpod: PathBuf,
    state: PathBuf,
    cache: PathBuf,
}

impl Cli {
    /// Runs `wasmpod <args>` to its end; its stdout, or an error with its stderr.
    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.wasmpod)
            .args(args)
            .env("WASMPOD_STATE_DIR", &self.state)
            .env("WASMPOD_CACHE_DIR", &self.cache)
            .stdin(Stdio::null())
            .output()?;
        ensure!(
            out.status.success(),
            "wasmpod {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Waits until pod `name`'s record says Ready (READY 1/1, Running), reading it as `wasmpod
/// ps` does; 10 s at most.
fn wait_ready(state: &Path, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(pod) = control::find(state, "default", name)
            && pod.record.wasmpod.ready == "1/1"
        {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "pod {name} never Ready");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `(Rss, Pss)` of process `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("a UTF-8 path")
}
