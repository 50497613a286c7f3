//! Soak of `containerd-shim-wasmpod-v1` under a private containerd, driven through CRI as
//! kubelet drives it: pod after pod is created, runs a worker that writes to a volume and a
//! long-running guest, has its logs read and two commands exec'd into the running guest (`cat`
//! of what the writer wrote, `ls` of the volume), is stopped gracefully and removed; every few minutes
//! one pod's shim is SIGKILLed mid-pod instead, and the pod is cleaned up after it. At the end
//! the node must be as it was after the warm-up: the daemon's RSS, descriptors and threads, and
//! the node's cgroups, network namespaces, mounts, shims and pod directories.
//!
//! Run as root, with containerd and runc installed (`.ci/run` installs them):
//! `cargo build --release -p containerd-shim-wasmpod-v1 -p wasmpod-cli &&
//! WASMPOD_TEST_BIN_DIR=target/release cargo run --release -p wasmpod-bench --bin bench-soak
//! [-- SECONDS [KILL_EVERY_SECONDS]]` (default one hour, a kill every 3 minutes).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use wasmpod_tests::containerd::{ContainerDef, Containerd, kill, log_lines};
use wasmpod_tests::wait_until;

/// What is counted on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    daemon_rss_kib: u64,
    daemon_fds: usize,
    daemon_threads: u64,
    cgroups: usize,
    netns: usize,
    mounts: usize,
    shims: usize,
    pod_dirs: usize,
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let seconds = args.next().and_then(Result::ok).unwrap_or(3600);
    let kill_every = Duration::from_secs(args.next().and_then(Result::ok).unwrap_or(180));
    let containerd = Containerd::start();
    containerd.import_pause();
    let cri_ns = wasmpod_tests::containerd::CRI_NAMESPACE;
    let write = containerd.import_module(cri_ns, wasmpod_guests::WRITE_P1, "write");
    let graceful = containerd.import_module(cri_ns, wasmpod_guests::GRACEFUL_P2, "graceful");
    let volume = containerd.dir().join("soak-volume");
    std::fs::create_dir_all(&volume).expect("volume");

    let cri = containerd.cri();
    let mut round = 0u64;
    let mut one_pod = |kill_shim: bool| {
        round += 1;
        let pod = cri.run_pod(&format!("soak-{round}"), None);
        let worker = cri.run_container(
            &pod,
            &ContainerDef::new("worker", &graceful, &["/data/worker.out"]).mount(&volume, "/data"),
        );
        let writer = cri.run_container(
            &pod,
            &ContainerDef::new(
                "writer",
                &write,
                &["/data/written", "round", &round.to_string()],
            )
            .mount(&volume, "/data"),
        );
        let written = cri.wait_exited(&writer);
        assert_eq!(written.exit_code, 0, "round {round}: {written:?}");
        wait_until("the worker's log", || {
            log_lines(&cri.status(&worker).log_path)
                .iter()
                .any(|(_, line)| line == "working")
        });
        // Exec into the running worker, as `kubectl exec` and exec probes do.
        let cat = cri
            .exec_sync(&worker, &["cat", "/data/written"], 10)
            .unwrap_or_else(|e| panic!("round {round}: exec cat: {e}"));
        assert_eq!(
            (
                cat.exit_code,
                String::from_utf8_lossy(&cat.stdout).trim_end()
            ),
            (0, format!("round {round}").as_str()),
            "round {round}: exec cat"
        );
        let ls = cri
            .exec_sync(&worker, &["ls", "/data"], 10)
            .unwrap_or_else(|e| panic!("round {round}: exec ls: {e}"));
        assert_eq!(ls.exit_code, 0, "round {round}: exec ls");
        if kill_shim {
            for pid in containerd.shim_pids() {
                kill("KILL", pid);
            }
            cri.wait_exited(&worker);
        } else {
            cri.stop_container(&worker, 10);
            let stopped = cri.wait_exited(&worker);
            assert_eq!(stopped.exit_code, 0, "round {round}: {stopped:?}");
        }
        cri.stop_pod(&pod);
        cri.remove_pod(&pod);
        wait_until("no shim left", || containerd.shim_pids().is_empty());
    };

    // Warm-up: caches, the daemon's pools, the first shim's pages.
    for _ in 0..20 {
        one_pod(false);
    }
    one_pod(true);
    let before = node(&containerd);
    let start = Instant::now();
    let mut last_kill = Instant::now();
    let (mut pods, mut kills) = (0u64, 0u64);
    let mut peak_rss = before.daemon_rss_kib;
    while start.elapsed() < Duration::from_secs(seconds) {
        let kill_shim = last_kill.elapsed() >= kill_every;
        one_pod(kill_shim);
        pods += 1;
        if kill_shim {
            kills += 1;
            last_kill = Instant::now();
        }
        if pods % 100 == 0 {
            let now = node(&containerd);
            peak_rss = peak_rss.max(now.daemon_rss_kib);
            eprintln!(
                "{:>6.0} s: {pods} pods, {kills} shims killed, {now:?}",
                start.elapsed().as_secs_f64()
            );
        }
    }
    // The last pod's teardown may still be finishing (a namespace held by an exiting process):
    // give the node a few seconds to settle before it is compared.
    let settle = Instant::now() + Duration::from_secs(10);
    let mut after = node(&containerd);
    while !is_flat(&before, &after) && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
        after = node(&containerd);
    }
    println!(
        "soak: {pods} pods in {:.0} s ({:.1} pods/s), {kills} shims SIGKILLed mid-pod",
        start.elapsed().as_secs_f64(),
        pods as f64 / start.elapsed().as_secs_f64()
    );
    println!("{:<28} {:>12} {:>12}", "", "after warm-up", "at the end");
    let rows: [(&str, u64, u64); 8] = [
        (
            "containerd RSS (KiB)",
            before.daemon_rss_kib,
            after.daemon_rss_kib,
        ),
        (
            "containerd fds",
            before.daemon_fds as u64,
            after.daemon_fds as u64,
        ),
        (
            "containerd threads",
            before.daemon_threads,
            after.daemon_threads,
        ),
        (
            "cgroups on the node",
            before.cgroups as u64,
            after.cgroups as u64,
        ),
        (
            "network namespaces",
            before.netns as u64,
            after.netns as u64,
        ),
        ("mounts", before.mounts as u64, after.mounts as u64),
        ("shim processes", before.shims as u64, after.shims as u64),
        (
            "pod directories",
            before.pod_dirs as u64,
            after.pod_dirs as u64,
        ),
    ];
    for (what, b, a) in rows {
        println!("{what:<28} {b:>12} {a:>12}");
    }
    println!("containerd peak RSS (KiB, sampled every 100 pods): {peak_rss}");
    let flat = is_flat(&before, &after);
    println!(
        "{}",
        if flat {
            "node flat: yes"
        } else {
            "node flat: NO"
        }
    );
    if !flat {
        std::process::exit(1);
    }
}

/// Whether nothing the churn makes is left over.
fn is_flat(before: &Node, after: &Node) -> bool {
    before.cgroups == after.cgroups
        && before.netns == after.netns
        && before.mounts == after.mounts
        && after.shims == 0
        && after.pod_dirs == before.pod_dirs
}

fn node(containerd: &Containerd) -> Node {
    let pid = containerd.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Node {
        daemon_rss_kib: field("VmRSS:"),
        daemon_fds: count(Path::new(&format!("/proc/{pid}/fd"))),
        daemon_threads: field("Threads:"),
        cgroups: wasmpod::host::this_cgroup2_mount().map_or(0, |root| count_dirs(&root)),
        netns: netns(),
        mounts: std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .count(),
        shims: containerd.shim_pids().len(),
        pod_dirs: count(&containerd.pod_state_dir()),
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count())
}

/// Directories under `root`, recursively (cgroups are never deep).
fn count_dirs(root: &Path) -> usize {
    let mut n = 0;
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                n += 1;
                pending.push(entry.path());
            }
        }
    }
    n
}

/// Distinct network namespaces held by any process.
fn netns() -> usize {
    let mut seen = HashSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) {
            seen.insert(meta.ino());
        }
    }
    seen.len()
}
