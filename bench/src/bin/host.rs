//! `host`: what the host layer costs per pod: making and removing its cgroup, network
//! namespace and veth pair, next to a pod on the host's namespace without a cgroup, in the
//! same run. Needs root.
//!
//! Run with `cargo run --release -p wasmpod-bench --bin bench-host`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, ensure};
use wasmpod::host::{self, CgroupLimits, HostConfig, HostLayer, NetnsMode, PodIp};
use wasmpod_bench::stats::{Samples, fmt_duration};

fn main() -> Result<()> {
    ensure!(host::privileged(), "the host layer benchmark needs root");
    let runs = if std::env::args().any(|a| a == "--quick") {
        5
    } else {
        200
    };
    let parent = PathBuf::from(format!("wasmpod-bench-{}", std::process::id()));
    let limits = CgroupLimits {
        memory_max: Some(256 << 20),
        cpu_max_millis: Some(1000),
        pids_max: Some(1024),
    };
    let pod_ip = PodIp::parse("169.254.88.2").map_err(anyhow::Error::msg)?;
    let cases = [
        (
            "host netns, no cgroup (baseline)",
            None,
            NetnsMode::Host,
            None,
        ),
        ("cgroup", Some(parent.clone()), NetnsMode::Host, None),
        ("new netns", None, NetnsMode::New, None),
        (
            "cgroup + new netns",
            Some(parent.clone()),
            NetnsMode::New,
            None,
        ),
        (
            "cgroup + new netns + veth",
            Some(parent.clone()),
            NetnsMode::New,
            Some(pod_ip),
        ),
    ];
    println!("host layer create + destroy, {runs} runs each");
    let mut baseline = None;
    for (label, cgroup_parent, netns, pod_ip) in cases {
        let config = HostConfig {
            cgroup_parent,
            limits,
            netns,
            pod_ip,
        };
        let (mut create, mut total) = (Samples::default(), Samples::default());
        for i in 0..runs {
            let began = Instant::now();
            let layer = HostLayer::create(&config, &format!("bench-{i}"), None)?;
            create.push(began.elapsed());
            layer.destroy()?;
            total.push(began.elapsed());
        }
        let (c, t) = (create.summary(), total.summary());
        let added = baseline.map_or(String::new(), |b| {
            format!(
                "  adds {:>9} to a pod's start",
                fmt_duration(c.p50.saturating_sub(b))
            )
        });
        baseline.get_or_insert(c.p50);
        println!(
            "  {label:<34} create p50 {:>9} p90 {:>9}   create+destroy p50 {:>9}{added}",
            fmt_duration(c.p50),
            fmt_duration(c.p90),
            fmt_duration(t.p50),
        );
    }
    if let Some(mount) = host::this_cgroup2_mount() {
        let _ = std::fs::remove_dir(mount.join(&parent));
    }
    Ok(())
}
