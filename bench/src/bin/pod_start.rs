//! `pod-start`: pod start latency of wasmpod next to plain wasmtime, measured in one run.
//!
//! `cargo run --release -p wasmpod-bench --bin bench-pod-start -- --help`; see `bench/README.md`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use wasmpod_bench::{Options, fs_type, run};

/// Pod start latency: a parsed 2-container pod until both containers run, next to a bare
/// wasmtime instantiate of the same guests, and cold/disk-warm/warm starts.
#[derive(Parser, Debug)]
struct Cli {
    /// Warm and bare starts measured (interleaved).
    #[arg(long, default_value_t = Options::default().iters)]
    iters: usize,
    /// Untimed warm and bare starts first.
    #[arg(long, default_value_t = Options::default().warmup)]
    warmup: usize,
    /// Starts on a fresh engine with a populated compile cache.
    #[arg(long, default_value_t = Options::default().disk_iters)]
    disk_iters: usize,
    /// Starts on a fresh engine with an empty compile cache.
    #[arg(long, default_value_t = Options::default().cold_iters)]
    cold_iters: usize,
    /// Repetitions of each piece of a warm start timed alone.
    #[arg(long, default_value_t = Options::default().profile_iters)]
    profile_iters: usize,
    /// Directory for pod directories and compile caches (a temporary directory inside it).
    /// Default: `$XDG_RUNTIME_DIR`, else `/dev/shm` (tmpfs, as wasmpod's state dir usually is).
    #[arg(long, default_value_os_t = Options::default().scratch)]
    scratch: PathBuf,
    /// Tokio worker threads (default: one per core, as `wasmpod run`).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let options = Options {
        iters: cli.iters,
        warmup: cli.warmup,
        disk_iters: cli.disk_iters,
        cold_iters: cli.cold_iters,
        profile_iters: cli.profile_iters,
        scratch: cli.scratch,
        workers: cli.workers,
    };
    let fs = fs_type(&options.scratch).unwrap_or_else(|| "?".into());
    println!(
        "{}, pod dirs and caches in {} ({fs})",
        wasmpod_bench::stats::machine(),
        options.scratch.display()
    );
    println!("load average before: {}", load_average());
    let report = run(&options)?;
    print!("{report}");
    println!("\nload average after: {}", load_average());
    Ok(())
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|avg| avg.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
