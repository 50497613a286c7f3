//! `wasmpod run` with the host layer on this machine (root, hybrid cgroups): the pod process
//! in its cgroup2 and its own network namespace, and nothing left after.

use std::path::PathBuf;
use std::process::Command;

use wasmpod_guests as guests;
use wasmpod_tests::cgroup::CgroupParent as Parent;
use wasmpod_tests::{Wasmpod, wait_until};

fn spinning_pod(seconds: u32) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: spinner}}\nspec:\n  restartPolicy: Never\n  activeDeadlineSeconds: {seconds}\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: spin\n    image: {}\n",
        guests::SPIN_P1
    )
}

fn usage_usec(cgroup: &std::path::Path) -> u64 {
    std::fs::read_to_string(cgroup.join("cpu.stat"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn links_in(pid: u32) -> Vec<String> {
    let out = Command::new("nsenter")
        .args([&format!("--net=/proc/{pid}/ns/net"), "ip", "-o", "link"])
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        })
        .collect()
}

#[test]
fn the_pod_process_lives_in_its_cgroup_and_namespace_and_both_go_with_it() {
    let wasmpod = Wasmpod::new();
    let parent = Parent::new("cgroup");
    let manifest = wasmpod.manifest("pod.yaml", &spinning_pod(30));
    let running = wasmpod.spawn(&[
        "run",
        "--cgroup-parent",
        &parent.relative,
        manifest.to_str().expect("utf-8"),
    ]);
    running.wait_for_stdout("[spin] spinning");
    let cgroups = parent.children();
    assert_eq!(cgroups.len(), 1, "{cgroups:?}");
    let cgroup = &cgroups[0];
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).expect("procs");
    assert!(
        procs.lines().any(|p| p == running.pid().to_string()),
        "pid {} not in {procs}",
        running.pid()
    );
    let start = usage_usec(cgroup);
    wait_until("cpu.stat grows while the guest spins", || {
        usage_usec(cgroup) >= start + 200_000
    });
    assert_eq!(
        links_in(running.pid()),
        vec!["lo"],
        "only lo in the pod's namespace"
    );
    running.signal("INT");
    let outcome = running.finish();
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(!cgroup.exists(), "the pod cgroup is removed");
    assert!(wasmpod.state_entries().iter().all(|e| !is_host_record(e)));
}

#[test]
fn a_pod_ip_puts_a_veth_pair_between_host_and_pod() {
    let wasmpod = Wasmpod::new();
    let manifest = wasmpod.manifest("pod.yaml", &spinning_pod(30));
    let running = wasmpod.spawn(&[
        "run",
        "--no-cgroup",
        "--pod-ip",
        "169.254.99.2",
        manifest.to_str().expect("utf-8"),
    ]);
    running.wait_for_stdout("[spin] spinning");
    let mut links = links_in(running.pid());
    links.sort();
    assert_eq!(links, vec!["eth0", "lo"]);
    let host_links = Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .expect("ip addr");
    let host_links = String::from_utf8_lossy(&host_links.stdout).into_owned();
    let veth = host_links
        .lines()
        .find(|l| l.contains("169.254.99.1/30"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .expect("the host end has 169.254.99.1/30");
    running.signal("INT");
    let outcome = running.finish();
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        !std::path::Path::new("/sys/class/net").join(&veth).exists(),
        "veth {veth} removed"
    );
}

#[test]
fn an_invalid_netns_path_starts_nothing_and_leaves_nothing() {
    let wasmpod = Wasmpod::new();
    let parent = Parent::new("badns");
    let path = wasmpod.manifest("pod.yaml", &spinning_pod(30));
    let out = wasmpod.cmd(&[
        "run",
        "--cgroup-parent",
        &parent.relative,
        "--netns",
        "/nonexistent/netns",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("/nonexistent/netns"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(parent.children(), Vec::<PathBuf>::new());
    assert!(
        wasmpod.state_entries().is_empty(),
        "{:?}",
        wasmpod.state_entries()
    );
}

#[test]
fn a_wildcard_listener_answers_at_the_pod_ip_and_the_host_loopback_stays_out_of_reach() {
    let wasmpod = Wasmpod::new();
    // A listener of the host's, on its loopback only.
    let host_only = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = host_only.local_addr().expect("addr").port();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: served}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: web\n    image: {server}\n    args: [\"0.0.0.0:8080\", \"--requests\", \"1\", \"--body\", \"from the pod\"]\n  - name: to-host-end\n    image: {get}\n    args: [\"http://169.254.99.5:{port}/\", \"--wait-ms\", \"300\"]\n  - name: to-loopback\n    image: {get}\n    args: [\"http://127.0.0.1:{port}/\", \"--wait-ms\", \"300\"]\n",
        server = guests::HTTP_SERVER_P2,
        get = guests::HTTP_GET_P2,
    );
    let manifest = wasmpod.manifest("pod.yaml", &manifest);
    let running = wasmpod.spawn(&[
        "run",
        "--no-cgroup",
        "--pod-ip",
        "169.254.99.6",
        manifest.to_str().expect("utf-8"),
    ]);
    running.wait_for_stdout("[web] listening on");
    let mut stream =
        std::net::TcpStream::connect(("169.254.99.6", 8080)).expect("connect to the pod IP");
    std::io::Write::write_all(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("from the pod"), "{response}");
    let outcome = running.finish();
    assert_eq!(outcome.code, 1, "the two clients fail: {}", outcome.stderr);
    for client in ["to-host-end", "to-loopback"] {
        let said = outcome.lines_of(client).join("\n");
        assert!(
            said.starts_with("http-get:"),
            "{client} reached the host: {said}"
        );
    }
    drop(host_only);
}

#[test]
fn the_next_run_cleans_up_after_a_pod_process_that_was_killed() {
    let wasmpod = Wasmpod::new();
    let parent = Parent::new("crash");
    let manifest = wasmpod.manifest("pod.yaml", &spinning_pod(30));
    let manifest = manifest.to_str().expect("utf-8");
    let crashed = wasmpod.spawn(&["run", "--cgroup-parent", &parent.relative, manifest]);
    crashed.wait_for_stdout("[spin] spinning");
    let leftovers = parent.children();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    crashed.signal("KILL");
    let outcome = crashed.finish();
    assert_eq!(outcome.code, -1, "killed by a signal");
    assert!(leftovers[0].exists(), "a killed process leaves its cgroup");
    assert!(
        wasmpod.state_entries().iter().any(|e| is_host_record(e)),
        "and its record"
    );

    let hello = wasmpod.manifest(
        "hello.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: next}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: hello\n    image: {}\n",
            guests::HELLO_P1
        ),
    );
    let next = wasmpod.cmd(&[
        "run",
        "--cgroup-parent",
        &parent.relative,
        hello.to_str().expect("utf-8"),
    ]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert!(
        next.stderr.contains("cleaned up after a crashed pod"),
        "{}",
        next.stderr
    );
    assert_eq!(
        parent.children(),
        Vec::<PathBuf>::new(),
        "both cgroups are gone"
    );
    assert!(wasmpod.state_entries().iter().all(|e| !is_host_record(e)));
}

/// Whether `entry` (a path relative to the state directory) is a pod's host-layer record.
fn is_host_record(entry: &std::path::Path) -> bool {
    entry
        .parent()
        .is_some_and(|pod| wasmpod::pod::PodDir::new(pod).host_record() == entry)
}

/// Sends `GET path` to `addr` with `Connection: close` and returns the whole response.
fn http_get(addr: (&str, u16), path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    std::io::Write::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("request");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).expect("response");
    response
}

#[test]
fn a_wasi_http_service_answers_at_the_pod_ip_and_drains_its_requests_on_sigterm() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: service}}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 30\n  containers:\n  - name: web\n    image: {}\n    ports: [{{containerPort: 8080}}]\n",
        guests::HTTP_SERVICE_P2,
    );
    let manifest = wasmpod.manifest("pod.yaml", &manifest);
    let running = wasmpod.spawn(&[
        "run",
        "--no-cgroup",
        "--pod-ip",
        "169.254.99.10",
        manifest.to_str().expect("utf-8"),
    ]);
    let pod = ("169.254.99.10", 8080);
    // A service listens before it is reported running (and the pod IP is there before any
    // container starts).
    running.wait_for_stdout("1/1     Running");
    let response = http_get(pod, "/");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello from wasi:http\n"), "{response}");

    // A slow request in flight when the pod is asked to stop is answered before it exits.
    let slow = std::thread::spawn(move || http_get(pod, "/slow?ms=1500"));
    running.wait_for_stdout("[web] GET /slow?ms=1500");
    running.signal("TERM");
    let response = slow.join().expect("join");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("slept 1500 ms\n"), "{response}");
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
}
