//! CRI pod churn and density: wasmpod pods next to runc pods, through one containerd, in
//! one run.
//!
//! A pod is what kubelet makes of a two-container Pod: RunPodSandbox, then CreateContainer and
//! StartContainer of a sleeper and an HTTP server, until both are running. A wasmpod pod runs
//! the `sleep` and `http-server` guests; a runc pod runs a static native pause and two static
//! native programs doing the same (built with rustc here). Measured for each:
//!
//! - **start**: one pod at a time, RunPodSandbox → both containers running (p50, p99);
//! - **churn**: `--churn` pods, `--concurrency` at a time, each started, then stopped and
//!   removed as kubelet does (StopPodSandbox, RemovePodSandbox): pods per second;
//! - **density**: `--density` running pods (each count in turn): the node's memory per pod
//!   (`MemTotal − MemAvailable` grown since before the first pod) and the proportional set
//!   size of the pods' processes (shims and everything under them); the goal is judged on
//!   the larger of the two.
//!
//! Goals (reported, never asserted): start p50 ≤ ½ runc's, churn ≥ 2× runc's, ≤ 4 MB per
//! wasmpod pod at 1,000 pods.
//!
//! Run as root, with containerd and runc installed (`.ci/run` installs them):
//! `cargo build --release -p containerd-shim-wasmpod-v1 -p wasmpod-cli -p wasmpod-bench &&
//! WASMPOD_TEST_BIN_DIR=target/release target/release/bench-cri`; put another containerd first
//! on `PATH` to measure it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_cri::v1::ContainerState;
use wasmpod_bench::native_image;
use wasmpod_bench::stats::{Samples, fmt_duration, machine};
use wasmpod_tests::containerd::{
    CRI_NAMESPACE, ContainerDef, Containerd, Cri, HANDLER, PAUSE_IMAGE, Pod, major_version,
    processes,
};

#[derive(Debug, Parser)]
#[command(about = "CRI pod churn and density, wasmpod next to runc")]
struct Args {
    /// Pods started one at a time for the start latency, per runtime.
    #[arg(long, default_value_t = 50)]
    starts: usize,
    /// Pods churned per runtime.
    #[arg(long, default_value_t = 500)]
    churn: usize,
    /// Pods started, stopped and removed at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Running pod counts whose memory is measured.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    density: Vec<usize>,
}

/// What a runtime's pods are made of.
struct Kind {
    label: &'static str,
    handler: &'static str,
    sleep: ContainerDef,
    server: ContainerDef,
}

fn main() {
    let args = Args::parse();
    let containerd = Containerd::start();
    println!(
        "machine: {}; containerd {}.x",
        machine(),
        major_version(&wasmpod_tests::containerd::require("containerd"))
    );

    // The sandbox image is a real pause for runc; wasmpod never runs it.
    let native = NativePrograms::build(&containerd);
    let sleep = containerd.import_module(CRI_NAMESPACE, wasmpod_guests::SLEEP_P1, "sleep");
    let server =
        containerd.import_module(CRI_NAMESPACE, wasmpod_guests::HTTP_SERVER_P2, "http-server");
    let kinds = [
        Kind {
            label: "wasmpod",
            handler: HANDLER,
            sleep: ContainerDef::new("sleep", &sleep, &["600000"]),
            server: ContainerDef::new("server", &server, &["127.0.0.1:8080"]),
        },
        Kind {
            label: "runc",
            handler: "runc",
            sleep: ContainerDef::new("sleep", &native.sleep, &[]),
            server: ContainerDef::new("server", &native.server, &[]),
        },
    ];
    let cri = containerd.cri();

    // Start latency, alternating the runtimes, after a warm-up pod each.
    let mut starts: Vec<Samples> = vec![Samples::default(); kinds.len()];
    for i in 0..=args.starts {
        for (k, kind) in kinds.iter().enumerate() {
            let began = Instant::now();
            let pod = start_pod(&cri, kind, &format!("start-{}-{i}", kind.label));
            let took = began.elapsed();
            if i > 0 {
                starts[k].push(took);
            }
            remove_pod(&cri, &pod);
        }
    }
    println!("\nCRI pod start (RunPodSandbox → 2 containers running), one at a time:");
    for (kind, samples) in kinds.iter().zip(&starts) {
        let s = samples.summary();
        println!(
            "  {:8} p50 {:>8}  p99 {:>8}  ({} pods)",
            kind.label,
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            s.n
        );
    }

    // Churn.
    println!(
        "\nchurn: {} pods, {} at a time (start, stop, remove):",
        args.churn, args.concurrency
    );
    let mut rates = Vec::new();
    for kind in &kinds {
        let began = Instant::now();
        concurrently(&containerd, args.churn, args.concurrency, |cri, i| {
            let pod = start_pod(cri, kind, &format!("churn-{}-{i}", kind.label));
            remove_pod(cri, &pod);
        });
        let took = began.elapsed();
        let rate = args.churn as f64 / took.as_secs_f64();
        rates.push(rate);
        println!(
            "  {:8} {rate:>7.1} pods/s  ({})",
            kind.label,
            fmt_duration(took)
        );
    }

    // Density.
    println!("\nmemory per running pod:");
    let mut per_pod = HashMap::new();
    let fds = open_files_limit(containerd.pid());
    for &count in &args.density {
        if let Some(limit) = fds
            && count as u64 * CONTAINERD_FDS_PER_POD > limit
        {
            println!(
                "  {count} pods: skipped: containerd may open {limit} files, and keeps about \
                 {CONTAINERD_FDS_PER_POD} per pod (its systemd unit lifts the limit; here \
                 it is the hard limit of this process)"
            );
            continue;
        }
        for kind in &kinds {
            settle();
            let before = node_used_kib();
            let pods = concurrently(&containerd, count, args.concurrency, |cri, i| {
                start_pod(cri, kind, &format!("dense-{}-{count}-{i}", kind.label))
            });
            settle();
            let node = node_used_kib().saturating_sub(before) as f64 / count as f64;
            let pss = pods_pss_kib(&containerd) as f64 / count as f64;
            // The goal is judged on the larger: the node's figure leaves out file pages the
            // page cache held before (the binaries), the processes' PSS counts them.
            per_pod.insert((kind.label, count), node.max(pss));
            println!(
                "  {:8} {count:>5} pods: node {:>6.2} MB/pod, pods' processes (PSS) {:>6.2} MB/pod",
                kind.label,
                node * 1.024 / 1000.0,
                pss * 1.024 / 1000.0
            );
            concurrently(&containerd, pods.len(), args.concurrency, |cri, i| {
                remove_pod(cri, &pods[i]);
            });
        }
    }

    println!("\ngoals (reported, never asserted):");
    let start_ratio = starts[0].summary().p50.as_secs_f64() / starts[1].summary().p50.as_secs_f64();
    verdict(
        "start p50 vs runc",
        start_ratio,
        "≤ 0.5",
        start_ratio <= 0.5,
    );
    let churn_ratio = rates[0] / rates[1];
    verdict("churn vs runc", churn_ratio, "≥ 2", churn_ratio >= 2.0);
    if let Some(&largest) = args.density.iter().max()
        && let Some(kib) = per_pod.get(&("wasmpod", largest))
    {
        let mb = kib * 1.024 / 1000.0;
        println!(
            "  wasmpod memory at {largest} pods = {mb:.2} MB/pod (goal ≤ 4): {}",
            if mb <= 4.0 { "met" } else { "missed" }
        );
    }
}

fn verdict(what: &str, value: f64, goal: &str, met: bool) {
    println!(
        "  {what} = {value:.2}× (goal {goal}): {}",
        if met { "met" } else { "missed" }
    );
}

/// Runs a pod of `kind` named `name` until both its containers are running.
fn start_pod(cri: &Cri<'_>, kind: &Kind, name: &str) -> Pod {
    let pod = cri.run_pod_on(kind.handler, name, None);
    let ids = [
        cri.run_container(&pod, &kind.sleep),
        cri.run_container(&pod, &kind.server),
    ];
    for id in &ids {
        // CRI raises no event for a running container; kubelet polls its status too.
        while cri.status(id).state != ContainerState::ContainerRunning {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pod
}

/// StopPodSandbox then RemovePodSandbox, as kubelet deletes a pod.
fn remove_pod(cri: &Cri<'_>, pod: &Pod) {
    cri.stop_pod(pod);
    cri.remove_pod(pod);
}

/// Runs `job(cri, i)` for `i` in `0..count` on `concurrency` threads, each with its own CRI
/// client; the results in order of `i`.
fn concurrently<T: Send>(
    containerd: &Containerd,
    count: usize,
    concurrency: usize,
    job: impl Fn(&Cri<'_>, usize) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let cri = containerd.cri();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return mine;
                        }
                        mine.push((i, job(&cri, i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// Files containerd holds open per running two-container pod, measured here with
/// containerd 2.1 (its shim connections and log pipe, each container's stdio FIFOs and log
/// file), with a margin: past its open-files limit it fails to start pods.
const CONTAINERD_FDS_PER_POD: u64 = 24;

/// The soft open-files limit of process `pid`.
fn open_files_limit(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Lets exited processes be reaped and freed memory be counted before a reading.
fn settle() {
    std::thread::sleep(Duration::from_secs(3));
}

/// `MemTotal − MemAvailable` in KiB.
fn node_used_kib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("MemTotal:").saturating_sub(field("MemAvailable:"))
}

/// The proportional set size, in KiB, of every shim of `containerd` (either runtime's) and
/// every process under them (runc's pause and containers).
fn pods_pss_kib(containerd: &Containerd) -> u64 {
    let shims: Vec<u32> = containerd
        .processes_of_this_containerd()
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    let mut parent = HashMap::new();
    for (pid, dir) in processes() {
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`: fields after the last `)`.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let under_a_shim = |mut pid: u32| loop {
        if shims.contains(&pid) {
            return true;
        }
        match parent.get(&pid) {
            Some(&p) if p > 1 => pid = p,
            _ => return false,
        }
    };
    parent
        .keys()
        .filter(|&&pid| under_a_shim(pid))
        .map(|pid| pss_kib(*pid))
        .sum()
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The native programs of a runc pod, as images: a pause (the sandbox image, under the name
/// containerd's config gives it), a sleeper and an HTTP server.
struct NativePrograms {
    sleep: String,
    server: String,
}

impl NativePrograms {
    fn build(containerd: &Containerd) -> Self {
        let pause = native_image(
            containerd,
            CRI_NAMESPACE,
            PAUSE_IMAGE,
            "pause",
            "fn main() { loop { std::thread::park(); } }",
        );
        assert_eq!(pause, PAUSE_IMAGE);
        let sleep = native_image(
            containerd,
            CRI_NAMESPACE,
            "wasmpod.test/native-sleep:1",
            "sleep",
            "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }",
        );
        let server = native_image(
            containerd,
            CRI_NAMESPACE,
            "wasmpod.test/native-server:1",
            "server",
            r#"use std::io::{Read, Write};
fn main() {
    let listener = std::net::TcpListener::bind("0.0.0.0:8080").expect("bind");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
    }
}
"#,
        );
        NativePrograms { sleep, server }
    }
}
