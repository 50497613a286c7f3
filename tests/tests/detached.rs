//! Pods managed from other processes, without a daemon: `wasmpod run -d` starts a pod process
//! of its own; `ps`, `logs`, `stop` and `rm`, each a process of its own, find it by its record
//! in the state directory and reach it through its control socket.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmpod::control::{self, FoundPod};
use wasmpod_guests as guests;
use wasmpod_tests::{DEADLINE, Wasmpod};

/// A pod of one container that works until asked to stop, then notes it in `/data/out.txt`.
fn manifest(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{{name: data, hostPath: {{path: DATA, type: Directory}}}}]
  containers:
  - name: app
    image: {image}
    args: [/data/out.txt]
    volumeMounts: [{{name: data, mountPath: /data}}]
",
        image = guests::GRACEFUL_P1,
    )
}

/// Removes pod `name` (killing its process) when a test ends, passed or not: a detached pod
/// outlives the command that started it.
struct Detached<'a> {
    wasmpod: &'a Wasmpod,
    name: &'a str,
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = self.wasmpod.cmd(&["rm", "-f", self.name]);
    }
}

/// Waits (until the test's deadline) for pod `name`'s record to satisfy `what`.
fn wait_for(wasmpod: &Wasmpod, name: &str, what: impl Fn(&FoundPod) -> bool) -> FoundPod {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = control::find(&wasmpod.state_dir(), "default", name);
        match found {
            Ok(pod) if what(&pod) => return pod,
            _ if Instant::now() > deadline => panic!("pod {name}: never as expected: {found:?}"),
            // The record is rewritten on every status change; look again shortly.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn data_dir(wasmpod: &Wasmpod) -> PathBuf {
    let data = wasmpod.root.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    data
}

#[test]
fn a_detached_pod_is_listed_logged_stopped_and_removed_from_other_processes() {
    let wasmpod = Wasmpod::new();
    let data = data_dir(&wasmpod);
    let path = wasmpod.manifest(
        "pod.yaml",
        &manifest("bg").replace("DATA", &data.display().to_string()),
    );
    let started = wasmpod.cmd(&["run", "-d", path.to_str().expect("utf-8")]);
    let _cleanup = Detached {
        wasmpod: &wasmpod,
        name: "bg",
    };
    assert_eq!(started.code, 0, "{}", started.stderr);
    assert_eq!(started.stdout, "bg\n", "run -d prints the pod's name");

    let running = wait_for(&wasmpod, "bg", |pod| {
        pod.record.wasmpod.summary == "Running"
    });
    assert!(running.record.is_running());
    assert_ne!(
        running.record.wasmpod.pid,
        std::process::id(),
        "a process of its own"
    );
    let socket = running.dir.control_socket();
    let mode = std::fs::metadata(&socket)
        .expect("control socket")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the control socket is its owner's only"
    );

    let ps = wasmpod.cmd(&["ps"]);
    assert_eq!(ps.code, 0, "{}", ps.stderr);
    let lines: Vec<Vec<&str>> = ps
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{}",
        ps.stdout
    );
    assert_eq!(
        lines[1][..4],
        ["bg", "1/1", "Running", "0"],
        "{}",
        ps.stdout
    );
    let json = wasmpod.cmd(&["ps", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&json.stdout).expect("ps -o json");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "bg");
    assert_eq!(list["items"][0]["status"]["phase"], "Running");
    let other = wasmpod.cmd(&["ps", "-n", "elsewhere"]);
    assert_eq!(other.stdout, "", "another namespace has no pods");

    // The container said `working` as it started; its log is read by the pod's name.
    let deadline = Instant::now() + DEADLINE;
    let logs = loop {
        let logs = wasmpod.cmd(&["logs", "bg", "-c", "app"]);
        if logs.stdout.contains("working") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(logs.stdout, "working\n", "{}", logs.stderr);

    let refused = wasmpod.cmd(&["rm", "bg"]);
    assert_eq!(refused.code, 1, "a running pod is not removed");
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("running"), "{}", refused.stderr);

    let stopped = wasmpod.cmd(&["stop", "bg"]);
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    assert_eq!(stopped.stdout, "bg\n");
    // `stop` returns once the pod process ended: the guest was asked, and stopped cleanly.
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).expect("out.txt"),
        "terminated: TERM\n"
    );
    let ended = control::find(&wasmpod.state_dir(), "default", "bg").expect("record");
    assert!(ended.record.wasmpod.ended && !ended.record.is_running());
    assert_eq!(ended.record.wasmpod.summary, "Completed");
    assert_eq!(ended.record.wasmpod.ready, "0/1");
    assert!(
        !socket.exists(),
        "the control socket is gone with its process"
    );
    let ps = wasmpod.cmd(&["ps"]);
    assert!(
        ps.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("Completed")),
        "{}",
        ps.stdout
    );

    let removed = wasmpod.cmd(&["rm", "bg"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(!ended.dir.path().exists(), "the pod directory is removed");
    let none = wasmpod.cmd(&["ps"]);
    assert_eq!(none.stdout, "");
    assert!(
        none.stderr.contains("No resources found"),
        "{}",
        none.stderr
    );
    let missing = wasmpod.cmd(&["stop", "bg"]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr.trim(),
        "wasmpod: pod \"bg\" not found in namespace \"default\""
    );
}

#[test]
fn rm_force_kills_a_running_pod_and_a_refused_pod_leaves_nothing() {
    let wasmpod = Wasmpod::new();
    let data = data_dir(&wasmpod);
    let path = wasmpod.manifest(
        "pod.yaml",
        &manifest("forced").replace("DATA", &data.display().to_string()),
    );
    let started = wasmpod.cmd(&["run", "-d", path.to_str().expect("utf-8")]);
    let _cleanup = Detached {
        wasmpod: &wasmpod,
        name: "forced",
    };
    assert_eq!(started.code, 0, "{}", started.stderr);
    let running = wait_for(&wasmpod, "forced", |pod| pod.record.is_running());
    let pid = running.record.wasmpod.pid;
    let removed = wasmpod.cmd(&["rm", "-f", "forced"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(!running.dir.path().exists());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.contains(") Z ")),
        "the pod process ended"
    );

    // A pod whose image is missing is refused by the pod process before it starts: its
    // error and exit code are `run -d`'s, and nothing is left.
    let bad = wasmpod.manifest(
        "bad.yaml",
        &manifest("bad")
            .replace("DATA", &data.display().to_string())
            .replace(guests::GRACEFUL_P1, "/nonexistent/missing.wasm"),
    );
    let refused = wasmpod.cmd(&["run", "-d", bad.to_str().expect("utf-8")]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_eq!(refused.stdout, "");
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("spec.containers[0].image"),
        "{}",
        refused.stderr
    );
    assert_eq!(wasmpod.cmd(&["ps"]).stdout, "", "nothing is left");
}
