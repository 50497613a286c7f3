//! The host layer on this machine's kernel (root, cgroup2 and network namespaces): made and
//! removed a thousand times without leaving anything behind, and all or nothing on failure.
//! A test that cannot run here fails; it never skips.

use std::path::{Path, PathBuf};

use wasmpod::host::{CgroupLimits, HostConfig, HostLayer, NetnsMode, PodIp};
use wasmpod::pod::PodDir;
use wasmpod_tests::cgroup::CgroupParent as Parent;

/// The tests count the process's fds: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn count_lines(command: &str, args: &[&str]) -> usize {
    let out = std::process::Command::new(command)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fds").count()
}

fn mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .count()
}

fn net_namespaces() -> usize {
    count_lines("lsns", &["-t", "net", "-n"])
}

fn links() -> usize {
    count_lines("ip", &["-o", "link"])
}

#[test]
fn a_thousand_create_destroy_cycles_leave_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let parent = Parent::new("cycles");
    let state = tempfile::tempdir().expect("tempdir");
    let before = (fds(), mounts(), net_namespaces(), links());
    let temp_before = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .count();
    for i in 0..1000 {
        let config = HostConfig {
            cgroup_parent: Some(PathBuf::from(&parent.relative)),
            limits: CgroupLimits {
                memory_max: Some(64 << 20),
                cpu_max_millis: Some(500),
                pids_max: Some(64),
            },
            netns: NetnsMode::New,
            // Every tenth pod gets a veth pair too (they are slower to make).
            pod_ip: (i % 10 == 0).then(|| PodIp::parse("169.254.77.2").expect("pod ip")),
        };
        let record = PodDir::new(state.path().join(format!("pod-{i}"))).host_record();
        let layer = HostLayer::create(&config, &format!("pod-{i}"), Some(&record))
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert!(layer.cgroup().is_some_and(|c| c.path().is_dir()));
        assert!(record.is_file(), "the record is written");
        layer.destroy().unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert!(!record.exists(), "the record is removed");
    }
    assert_eq!(parent.children(), Vec::<PathBuf>::new(), "cgroups left");
    let after = (fds(), mounts(), net_namespaces(), links());
    assert_eq!(
        before, after,
        "(fds, mounts, net namespaces, links) before and after"
    );
    let temp_after = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .count();
    assert!(
        temp_after <= temp_before + 1,
        "temp dirs: {temp_before} → {temp_after}"
    );
}

#[test]
fn setup_failing_halfway_leaves_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let parent = Parent::new("halfway");
    let state = tempfile::tempdir().expect("tempdir");
    let record = PodDir::new(state.path()).host_record();
    let config = HostConfig {
        cgroup_parent: Some(PathBuf::from(&parent.relative)),
        limits: CgroupLimits::default(),
        netns: NetnsMode::Path(Path::new("/nonexistent/netns").to_owned()),
        pod_ip: None,
    };
    let links_before = links();
    let err = HostLayer::create(&config, "halfway", Some(&record)).expect_err("bad netns path");
    assert!(err.to_string().contains("/nonexistent/netns"), "{err}");
    assert_eq!(
        parent.children(),
        Vec::<PathBuf>::new(),
        "the cgroup made first is gone"
    );
    assert!(!record.exists());
    // Not a namespace at all: a plain file.
    let file = state.path().join("plain");
    std::fs::write(&file, "").expect("file");
    let config = HostConfig {
        netns: NetnsMode::Path(file),
        ..config
    };
    let err = HostLayer::create(&config, "halfway", Some(&record)).expect_err("not a netns");
    assert!(err.to_string().contains("not a network namespace"), "{err}");
    assert_eq!(parent.children(), Vec::<PathBuf>::new());
    assert_eq!(links(), links_before);
}
