//! `guarantees`: what the pod guarantees cost, each next to its baseline in the same run.
//!
//! - termination latency: a cooperative guest (exits when it sees the termination request),
//!   from the stop request to the container gone and to the sandbox deleted; a spinning guest
//!   with a 1 s grace period, how long after the deadline the hard stop lands;
//! - CPU fairness cost: a compute-bound guest on an engine with epoch interruption (yield at
//!   every 10 ms tick) next to the same guest on an engine without it;
//! - CPU limit accuracy: a spinning guest's measured CPU share under `limits.cpu` of 250m and
//!   500m next to the share asked for.
//!
//! Run with `cargo run --release -p wasmpod-bench --bin bench-guarantees`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use wasmpod::spec::ContainerSpec;
use wasmpod::{ContainerConfig, Engine, EngineConfig, Sandbox, SandboxConfig};
use wasmpod_bench::stats::{Samples, fmt_duration, ratio};
use wasmpod_guests as guests;

const GRACE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 2 } else { 20 };
    let spins = if quick { 1 } else { 5 };
    let engine = new_engine(true)?;
    let plain = new_engine(false)?;
    println!("termination latency ({runs} runs each)");
    termination(&engine, runs, spins).await?;
    println!("\nCPU fairness cost");
    fairness(&engine, &plain, if quick { 1 } else { 7 }).await?;
    println!("\nCPU limit accuracy");
    for millis in [250, 500] {
        throttle(&engine, millis, if quick { 300 } else { 2000 }).await?;
    }
    Ok(())
}

fn new_engine(epoch_interruption: bool) -> Result<Engine> {
    Ok(Engine::new(EngineConfig {
        cache_dir: None,
        epoch_interruption,
        ..EngineConfig::default()
    })?)
}

async fn sandbox(engine: &Engine, name: &str) -> Result<(Sandbox, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let sandbox = Sandbox::create(engine, SandboxConfig::new(name, dir.path().join("pod"))).await?;
    Ok((sandbox, dir))
}

/// Starts `module` with `args` as container `name` and waits for its first output record.
async fn start(
    engine: &Engine,
    name: &str,
    module: &str,
    args: &[&str],
    cpu_millis: Option<u64>,
) -> Result<(Sandbox, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let mut config = SandboxConfig::new(name, dir.path().join("pod"));
    config.log_observer = Some(std::sync::Arc::new(move |_, _, _, _| {
        if let Some(tx) = tx.lock().ok().and_then(|mut tx| tx.take()) {
            let _ = tx.send(());
        }
    }));
    let sandbox = Sandbox::create(engine, config).await?;
    let mut spec = ContainerSpec::new(name, module);
    spec.argv.extend(args.iter().map(|a| a.to_string()));
    spec.resources.cpu_limit = cpu_millis;
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await?;
    sandbox.start_container(name)?;
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .context("guest never printed")??;
    Ok((sandbox, dir))
}

async fn termination(engine: &Engine, runs: usize, spins: usize) -> Result<()> {
    let (mut exited, mut gone) = (Samples::default(), Samples::default());
    for _ in 0..runs {
        let (sandbox, _dir) =
            start(engine, "polite", guests::GRACEFUL_P1, &["/dev/null"], None).await?;
        let began = Instant::now();
        sandbox
            .stop_container("polite", Duration::from_secs(30))
            .await?;
        exited.push(began.elapsed());
        sandbox.remove_container("polite")?;
        sandbox.delete().await?;
        gone.push(began.elapsed());
    }
    let (e, g) = (exited.summary(), gone.summary());
    println!(
        "  cooperative guest   request → exited  p50 {:>9}  p90 {:>9}",
        fmt_duration(e.p50),
        fmt_duration(e.p90)
    );
    println!(
        "  cooperative guest   request → deleted p50 {:>9}  p90 {:>9}",
        fmt_duration(g.p50),
        fmt_duration(g.p90)
    );
    let mut late = Samples::default();
    for _ in 0..spins {
        let (sandbox, _dir) = start(engine, "spin", guests::SPIN_P1, &[], None).await?;
        let began = Instant::now();
        let exit = sandbox.stop_container("spin", GRACE).await?;
        late.push(began.elapsed().saturating_sub(GRACE));
        anyhow::ensure!(
            exit.is_some_and(|e| e.code == 137),
            "the spinner was not hard-stopped"
        );
        sandbox.delete().await?;
    }
    let l = late.summary();
    println!(
        "  spinning guest      hard stop after the 1 s deadline: p50 {:>9}  p99 {:>9}  (goal ≤ 10 ms)",
        fmt_duration(l.p50),
        fmt_duration(l.p99),
    );
    Ok(())
}

/// Runs `compute` to its end; wall time from start to exit.
async fn compute(engine: &Engine, millions: &str) -> Result<Duration> {
    let (sandbox, _dir) = sandbox(engine, "compute").await?;
    let mut spec = ContainerSpec::new("compute", guests::COMPUTE_P1);
    spec.argv.push(millions.to_owned());
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await?;
    let began = Instant::now();
    sandbox.start_container("compute")?;
    let exit = sandbox.wait_container("compute").await?;
    let took = began.elapsed();
    anyhow::ensure!(exit.success(), "compute failed: {exit:?}");
    sandbox.delete().await?;
    Ok(took)
}

async fn fairness(with: &Engine, without: &Engine, runs: usize) -> Result<()> {
    let millions = "400";
    // Warm both engines (compile once each) before timing.
    compute(with, "1").await?;
    compute(without, "1").await?;
    let (mut on, mut off) = (Samples::default(), Samples::default());
    for _ in 0..runs {
        on.push(compute(with, millions).await?);
        off.push(compute(without, millions).await?);
    }
    let (on, off) = (on.summary(), off.summary());
    println!(
        "  compute-bound guest, epoch yielding on  p50 {:>9}",
        fmt_duration(on.p50)
    );
    println!(
        "  same guest, epoch interruption off      p50 {:>9}",
        fmt_duration(off.p50)
    );
    println!(
        "  slowdown: {:+.1} %  (goal ≤ 5 %)",
        (ratio(on.p50, off.p50) - 1.0) * 100.0
    );
    Ok(())
}

async fn throttle(engine: &Engine, millis: u64, run_ms: u64) -> Result<()> {
    let (sandbox, _dir) = start(engine, "spin", guests::SPIN_P2, &[], Some(millis)).await?;
    let began = Instant::now();
    let cpu_before = sandbox.container_status("spin")?.usage.cpu_time();
    tokio::time::sleep(Duration::from_millis(run_ms)).await;
    let cpu = sandbox.container_status("spin")?.usage.cpu_time() - cpu_before;
    let wall = began.elapsed();
    sandbox.kill_container("spin")?;
    sandbox.wait_container("spin").await?;
    sandbox.delete().await?;
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "  limits.cpu {millis}m: measured share {:.3} of a core over {} ({:+.1} % of the limit)",
        share,
        fmt_duration(wall),
        (share / (millis as f64 / 1000.0) - 1.0) * 100.0
    );
    Ok(())
}
