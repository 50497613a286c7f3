//! Benchmark of `containerd-shim-wasmpod-v1` (issue 6), each figure next to its baseline in the
//! same run, through one private containerd:
//!
//! - `ctr run --rm` of the `hello` module (wasmpod) vs a static native hello under runc;
//! - idle memory of a two-container pod: the shim's private RSS (and its cgroup's
//!   `memory.current` when the memory controller is there).
//!
//! Run as root, with containerd and runc installed (`.ci/run` installs them):
//! `cargo build --release -p containerd-shim-wasmpod-v1 -p wasmpod-cli &&
//! WASMPOD_TEST_BIN_DIR=target/release cargo run --release -p wasmpod-bench --bin bench-shim
//! [-- RUNS]` (without the variable it measures the `target/debug` shim).

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_cri::v1::ContainerState;
use wasmpod_bench::native_image;
use wasmpod_bench::stats::{Samples, fmt_duration};
use wasmpod_tests::containerd::{CRI_NAMESPACE, ContainerDef, Containerd, RUNTIME};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let containerd = Containerd::start();
    containerd.import_pause();
    let hello = containerd.import_module("default", wasmpod_guests::HELLO_P1, "hello");
    let native = native_hello(&containerd);

    // ctr run --rm, alternating, after one warm-up run each (compile cache, page cache).
    let mut wasm = Vec::new();
    let mut runc = Vec::new();
    for i in 0..=runs {
        let w = ctr_run(
            &containerd,
            RUNTIME,
            &hello,
            &format!("w{i}"),
            "hello from wasm",
        );
        let r = ctr_run(
            &containerd,
            "io.containerd.runc.v2",
            &native,
            &format!("r{i}"),
            "hello from native",
        );
        if i > 0 {
            wasm.push(w);
            runc.push(r);
        }
    }
    report("ctr run --rm hello, wasmpod", &mut wasm);
    report("ctr run --rm hello, runc (static native)", &mut runc);

    // Idle memory (CRI pod start, churn and density next to runc: bench-cri).
    let sleep = containerd.import_module(CRI_NAMESPACE, wasmpod_guests::SLEEP_P1, "sleep");
    let server =
        containerd.import_module(CRI_NAMESPACE, wasmpod_guests::HTTP_SERVER_P2, "http-server");
    let cri = containerd.cri();
    let run_pod = |name: &str| {
        let pod = cri.run_pod(name, None);
        let a = cri.run_container(&pod, &ContainerDef::new("sleep", &sleep, &["600000"]));
        let b = cri.run_container(
            &pod,
            &ContainerDef::new("server", &server, &["127.0.0.1:8080"]),
        );
        for id in [&a, &b] {
            while cri.status(id).state != ContainerState::ContainerRunning {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        pod
    };
    // Idle memory: one pod alone on the node, then each of two. The binary's pages a shim
    // touched are private to it while it is the only shim; a second shim shares them.
    // Each shim's private RSS once the pods have sat idle for a moment.
    let idle_shims = || {
        std::thread::sleep(Duration::from_secs(2));
        containerd
            .shim_pids()
            .into_iter()
            .map(private_rss)
            .collect::<Vec<_>>()
    };
    let first = run_pod("idle-1");
    let alone = idle_shims();
    let second = run_pod("idle-2");
    let two = idle_shims();
    for pod in [first, second] {
        cri.stop_pod(&pod);
        cri.remove_pod(&pod);
    }
    for (label, shims) in [
        ("the only pod on the node", alone),
        ("each of two pods", two),
    ] {
        for (clean, dirty) in shims {
            println!(
                "idle 2-container pod, {label}: shim private RSS {:.1} MiB = {:.1} MiB dirty \
                 (the pod's own) + {:.1} MiB clean (file pages no other process maps)",
                (clean + dirty) as f64 / 1024.0,
                dirty as f64 / 1024.0,
                clean as f64 / 1024.0,
            );
        }
    }
}

/// `ctr run --rm` once; how long it took.
fn ctr_run(containerd: &Containerd, runtime: &str, image: &str, id: &str, says: &str) -> Duration {
    let started = Instant::now();
    let ran = containerd.ctr("default", &["run", "--rm", "--runtime", runtime, image, id]);
    let elapsed = started.elapsed();
    assert!(
        ran.code == 0 && ran.stdout.contains(says),
        "{runtime}: {ran:?}"
    );
    elapsed
}

/// A static native hello, as an image for runc.
fn native_hello(containerd: &Containerd) -> String {
    native_image(
        containerd,
        "default",
        "wasmpod.test/native-hello:1",
        "hello",
        "fn main() { println!(\"hello from native\"); }\n",
    )
}

/// Private (unshared) resident memory of `pid` in KiB: `(clean, dirty)`. Clean private pages
/// are file pages only this process maps now (the binary's code): a second shim shares them.
fn private_rss(pid: u32) -> (u64, u64) {
    let rollup = std::fs::read_to_string(Path::new(&format!("/proc/{pid}/smaps_rollup")))
        .unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>()
    };
    (field("Private_Clean:"), field("Private_Dirty:"))
}

fn report(what: &str, samples: &mut [Duration]) {
    let mut all = Samples::default();
    for sample in samples.iter() {
        all.push(*sample);
    }
    let summary = all.summary();
    println!(
        "{what}: p50 {}, p90 {}, min {} ({} runs)",
        fmt_duration(summary.p50),
        fmt_duration(summary.p90),
        fmt_duration(summary.min),
        summary.n
    );
}
