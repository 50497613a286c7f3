//! The host layer with every cgroup controller, in a VM: this machine's cgroup2 tree lacks the
//! memory, cpu and pids controllers, so this test boots a Debian kernel in
//! `qemu-system-x86_64 -accel tcg` with an initramfs (built by `tests/vm/build.sh`) holding
//! busybox, the `wasmpod` binary and the `spin` and `fill` guests. Its `/init`
//! (`tests/vm/init`) enables `+memory +cpu +pids`, runs the pods of `tests/vm/pods/` and prints
//! what happened between `=====BEGIN name=====` / `=====END name=====` markers on the serial
//! console, which this test parses. It shows:
//!
//! - `cpu.max`: a pod whose only container has `limits.cpu: 200m` gets `cpu.max` "20000 100000"
//!   and the kernel throttles its spinning guest (`nr_throttled` > 0 in the pod cgroup's
//!   `cpu.stat`, read while it runs, and in the pod's final status);
//! - `pids.max`: the pod cgroup's `pids.max` is wasmpod's default, 1024;
//! - `memory.max`: a pod whose guest writes 256 MiB into a memory-backed `emptyDir` (the state
//!   dir is a tmpfs in the VM; as in Kubernetes those pages are charged to the pod's cgroup)
//!   outgrows `memory.max` (32Mi: the container's limit, `--memory-overhead 0`) while its linear
//!   memory stays far below the engine's limit, so the kernel's OOM killer ends the `wasmpod`
//!   process: it dies of SIGKILL (exit status 137 in the VM's shell, no JSON status), the cgroup
//!   it leaves behind counts `oom_kill` ≥ 1 in `memory.events`, and the kernel log says
//!   "Memory cgroup out of memory".
//!
//! The kernel and busybox are `apt-get download`ed (never installed) into `target/vm/debs` once.
//! Needs `qemu-system-x86_64`, `cpio`, `apt-get`, `dpkg-deb` and access to Debian's archive;
//! without them the test fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wasmpod_guests as guests;
use wasmpod_tests::wasmpod_bin;

/// How long the VM may run (boot, the two pods, power-off) before the test fails. TCG is slow.
const VM_DEADLINE: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `target/vm`, next to the `wasmpod` binary's profile directory.
fn vm_dir() -> PathBuf {
    wasmpod_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("vm")
}

/// Builds (or refreshes) `target/vm/vmlinuz` and `target/vm/initrd.gz`.
fn build_images() -> (PathBuf, PathBuf) {
    let out = vm_dir();
    let status = Command::new("bash")
        .arg(repo().join("tests/vm/build.sh"))
        .arg(&out)
        .arg(wasmpod_bin())
        .args([guests::SPIN_P1, guests::FILL_P1])
        .status()
        .expect("run tests/vm/build.sh");
    assert!(status.success(), "tests/vm/build.sh failed: {status}");
    (out.join("vmlinuz"), out.join("initrd.gz"))
}

/// Boots the VM and returns its serial console output.
fn boot(kernel: &Path, initrd: &Path) -> String {
    let qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-nographic"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 quiet panic=-1", "-no-reboot"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qemu-system-x86_64 (apt-get install qemu-system-x86)");
    let pid = qemu.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(qemu.wait_with_output());
    });
    let started = Instant::now();
    let output = match rx.recv_timeout(VM_DEADLINE) {
        Ok(output) => output.expect("wait for qemu"),
        Err(_) => {
            // End the qemu we started, by its pid, and fail.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the VM did not power off within {VM_DEADLINE:?}");
        }
    };
    eprintln!("VM ran for {:?}", started.elapsed());
    let console = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    assert!(
        output.status.success(),
        "qemu failed ({}):\n{}\n{console}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    console
}

/// The sections between `=====BEGIN name=====` and `=====END name=====` lines.
fn sections(console: &str) -> HashMap<String, String> {
    let mut found = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in console.lines() {
        if let Some(name) = line
            .find("=====BEGIN ")
            .map(|at| &line[at + "=====BEGIN ".len()..])
            .and_then(|rest| rest.strip_suffix("====="))
        {
            current = Some((name.to_owned(), String::new()));
        } else if let Some(name) = line
            .strip_prefix("=====END ")
            .and_then(|rest| rest.strip_suffix("====="))
        {
            if let Some((open, text)) = current.take() {
                assert_eq!(open, name, "unbalanced markers");
                found.insert(open, text);
            }
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    found
}

/// The value of `key` in `key=value` or `key value` lines of `text`.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('=').or_else(|| rest.strip_prefix(' ')))
            .map(str::trim)
    })
}

fn number(text: &str, key: &str) -> u64 {
    field(text, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in:\n{text}"))
}

#[test]
fn cgroup_limits_in_a_vm() {
    let (kernel, initrd) = build_images();
    let console = boot(&kernel, &initrd);
    let found = sections(&console);
    let section = |name: &str| -> &str {
        found
            .get(name)
            .unwrap_or_else(|| panic!("no {name} section in the console output:\n{console}"))
    };
    eprintln!("{console}");
    assert!(found.contains_key("done"), "the init script did not finish");

    let setup = section("setup");
    let controllers = field(setup, "subtree_control").expect("subtree_control");
    for c in ["cpu", "memory", "pids"] {
        assert!(
            controllers.split_whitespace().any(|x| x == c),
            "{c} not enabled: {setup}"
        );
    }

    // cpu.max and pids.max, read from the pod cgroup while the spinning guest runs.
    let spin = section("spin-cgroup");
    assert!(
        field(spin, "cgroup").is_some_and(|c| !c.is_empty()),
        "the spinning pod's cgroup was not found:\n{spin}"
    );
    assert_eq!(field(spin, "cpu.max"), Some("20000 100000"), "{spin}");
    assert_eq!(field(spin, "pids.max"), Some("1024"), "{spin}");
    assert!(number(spin, "nr_throttled") > 0, "not throttled:\n{spin}");
    assert!(number(spin, "usage_usec") > 0, "{spin}");
    // The pod's own report agrees: wasmpod read nr_throttled into its status.
    let status: serde_json::Value =
        serde_json::from_str(section("spin-json")).expect("the spinning pod's JSON status");
    assert_eq!(status["reason"], "DeadlineExceeded", "{status}");
    let throttled = status["wasmpod"]["cgroup"]["nrThrottled"]
        .as_u64()
        .unwrap_or_else(|| panic!("no nrThrottled: {status}"));
    assert!(throttled > 0, "{status}");

    // memory.max: the kernel OOM-kills the pod process.
    let limits = section("oom-limits");
    assert_eq!(number(limits, "memory.max"), 32 << 20, "{limits}");
    let result = section("oom-result");
    assert_eq!(
        field(result, "exit"),
        Some("137"),
        "wasmpod was not killed by SIGKILL:\n{result}"
    );
    let cgroup = section("oom-cgroup");
    assert!(number(cgroup, "oom_kill") >= 1, "no OOM kill:\n{cgroup}");
    let dmesg = section("oom-dmesg");
    assert!(
        dmesg.contains("Memory cgroup out of memory"),
        "no kernel OOM message:\n{dmesg}"
    );
}
