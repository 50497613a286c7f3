//! Hostile guests under `wasmpod run` (host layer on, as root): each misbehaves in one way,
//! and each time its own container fails or is held back while its neighbour completes, and
//! the pod leaves nothing behind.

use wasmpod_guests as guests;
use wasmpod_tests::{
    Outcome, Wasmpod, container_status, terminated, terminated_message as message,
};

/// Runs `manifest` with `--rm` and checks the state directory is empty afterwards.
fn run_leaving_nothing(wasmpod: &Wasmpod, manifest: &str) -> (Outcome, serde_json::Value) {
    let out = wasmpod.run_json(manifest, &["--rm"]);
    let status = out.json();
    assert_eq!(
        wasmpod.state_entries(),
        Vec::<std::path::PathBuf>::new(),
        "left behind\n{}",
        out.stderr
    );
    (out, status)
}

#[test]
fn an_open_file_flood_ends_its_own_container_only() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: files}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
  - name: flood
    image: {hostile}
    args: ["files", "/data"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: neighbour
    image: {write}
    args: ["/data/neighbour", "still", "fine"]
    volumeMounts: [{{name: data, mountPath: /data}}]
"#,
        hostile = guests::HOSTILE_P1,
        write = guests::WRITE_P2,
    );
    let (out, status) = run_leaving_nothing(&wasmpod, &manifest);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(terminated(&status, "flood").0, 134, "{status}");
    assert!(
        message(&status, "flood").contains("resource table has no free keys"),
        "{status}"
    );
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
}

#[test]
fn a_hundred_thousand_files_and_a_deep_tree_are_measured_and_removed() {
    let wasmpod = Wasmpod::new();
    // The sizeLimit makes wasmpod walk the volume every second while the guest builds it.
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: tree}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, emptyDir: {{sizeLimit: 1Gi}}}}]
  containers:
  - name: builder
    image: {hostile}
    args: ["tree", "/data", "100000", "12000"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: neighbour
    image: {hello}
"#,
        hostile = guests::HOSTILE_P1,
        hello = guests::HELLO_P2,
    );
    let (out, status) = run_leaving_nothing(&wasmpod, &manifest);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.lines_of("builder"),
        ["made 100000 files and 12000 levels"]
    );
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
}

#[test]
fn symlink_loops_fail_their_own_container() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: loops}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, emptyDir: {{}}}}]
  initContainers:
  - name: a
    image: {ln}
    args: ["b", "/data/a"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: b
    image: {ln}
    args: ["a", "/data/b"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
  - name: reader
    image: {cat}
    args: ["/data/a/x"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: workdir
    image: {cat}
    workingDir: /data/a/w
    args: ["x"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: subpath
    image: {cat}
    args: ["/x/y"]
    volumeMounts: [{{name: data, mountPath: /x, subPath: b/w}}]
  - name: neighbour
    image: {hello}
"#,
        ln = guests::LN_P1,
        cat = guests::CAT_P1,
        hello = guests::HELLO_P2,
    );
    let (out, status) = run_leaving_nothing(&wasmpod, &manifest);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(terminated(&status, "reader").0, 1, "{status}");
    let error = out.lines_of("reader").join("\n");
    assert!(error.starts_with("cat /data/a/x:"), "{error}");
    for (name, field) in [("workdir", "workingDir"), ("subpath", "subPath")] {
        assert_eq!(terminated(&status, name).1, "StartError", "{status}");
        let message = message(&status, name);
        assert!(
            message.contains(field) && message.contains("symbolic links"),
            "{name}: {message}"
        );
    }
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
}

#[test]
fn stdout_without_newlines_is_split_into_bounded_records() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: line}}
spec:
  restartPolicy: Never
  containers:
  - name: line
    image: {hostile}
    args: ["line", "41943100"]
  - name: neighbour
    image: {hello}
"#,
        hostile = guests::HOSTILE_P2,
        hello = guests::HELLO_P1,
    );
    let path = wasmpod.manifest("pod.yaml", &manifest);
    let out = wasmpod.cmd(&["run", "-o", "json", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status = out.json();
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
    // Kept without --rm: the log files are what is checked.
    let pod_dir = std::fs::read_dir(wasmpod.state_dir())
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("_line_"))
        .expect("pod dir");
    let logs = wasmpod::pod::PodDir::new(pod_dir).log_dir("line");
    let mut files: Vec<_> = std::fs::read_dir(&logs)
        .expect("log dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(!files.is_empty() && files.len() <= 5, "{files:?}");
    let mut records = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("log");
        assert!(
            std::fs::metadata(file).expect("size").len() <= (10 << 20) + (16 << 10) + 64,
            "{file:?}"
        );
        for record in text.lines() {
            let record = wasmpod::logs::LogRecord::parse(record).expect("a CRI record");
            assert!(
                record.content.len() <= wasmpod::logs::MAX_RECORD,
                "{file:?}"
            );
            assert!(record.content.bytes().all(|b| b == b'x'), "{file:?}");
            records += 1;
        }
    }
    assert!(records > 0);
    // The guest's last bytes (without a newline) end the last file as a full record.
    let last = std::fs::read_to_string(files.first().expect("current log")).expect("log");
    let last =
        wasmpod::logs::LogRecord::parse(last.lines().last().expect("a record")).expect("record");
    assert!(!last.partial, "{last:?}");
}

#[test]
fn a_connection_flood_is_capped_and_the_pod_still_serves() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: connections}}
spec:
  restartPolicy: Never
  containers:
  - name: flood
    image: {hostile}
    args: ["connections"]
  - name: server
    image: {server}
    args: ["127.0.0.1:8080", "--requests", "1", "--body", "served"]
  - name: client
    image: {get}
    args: ["http://127.0.0.1:8080/", "--wait-ms", "20000"]
"#,
        hostile = guests::HOSTILE_P2,
        server = guests::HTTP_SERVER_P2,
        get = guests::HTTP_GET_P2,
    );
    let (out, status) = run_leaving_nothing(&wasmpod, &manifest);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let flood = out.lines_of("flood").join("\n");
    assert!(flood.starts_with("held "), "{flood}");
    assert_eq!(out.lines_of("client"), ["served"]);
    assert_eq!(terminated(&status, "server"), (0, "Completed".into()));
}

#[test]
fn huge_argv_and_env_reach_the_guest_within_its_memory_limit_only() {
    let wasmpod = Wasmpod::new();
    let arg = "a".repeat(1 << 20);
    let value = "v".repeat(1 << 20);
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: args}}
spec:
  restartPolicy: Never
  containers:
  - name: roomy
    image: {hostile}
    args: ["args", "{arg}", "{arg}", "{arg}", "{arg}"]
    env: [{{name: BIG, value: "{value}"}}, {{name: BIG2, value: "{value}"}}]
  - name: cramped
    image: {hostile}
    args: ["args", "{arg}", "{arg}", "{arg}", "{arg}"]
    env: [{{name: BIG, value: "{value}"}}, {{name: BIG2, value: "{value}"}}]
    resources: {{limits: {{memory: 2Mi}}}}
  - name: neighbour
    image: {hello}
"#,
        hostile = guests::HOSTILE_P1,
        hello = guests::HELLO_P2,
    );
    let (out, status) = run_leaving_nothing(&wasmpod, &manifest);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let roomy = out.lines_of("roomy").join("\n");
    assert!(
        roomy.starts_with(&format!(
            "6 args of {} bytes, ",
            4 * (1 << 20) + 4 + "hostile.wasm".len()
        )),
        "{roomy}"
    );
    assert_eq!(terminated(&status, "roomy"), (0, "Completed".into()));
    assert_eq!(
        terminated(&status, "cramped"),
        (137, "OOMKilled".into()),
        "{status}"
    );
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
}

/// A timer is two handles (its deadline and its pollable): 1,900 of them and the guest's own
/// few fill most of the 4096-handle cap; 10,000 pass it.
#[test]
fn a_guest_polling_thousands_of_pollables_neither_starves_its_neighbour_nor_passes_the_cap() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: pollers}}
spec:
  restartPolicy: Never
  containers:
  - name: poller
    image: {hostile}
    args: ["poll", "1900", "4000"]
  - name: greedy
    image: {hostile}
    args: ["poll", "10000", "3000"]
  - name: neighbour
    image: {sleep}
    args: ["100"]
"#,
        hostile = guests::HOSTILE_P2,
        sleep = guests::SLEEP_P1,
    );
    let (out, status) = run_leaving_nothing(&wasmpod, &manifest);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let polled = out.lines_of("poller").join("\n");
    assert!(polled.starts_with("polled 1900 pollables "), "{polled}");
    assert_eq!(terminated(&status, "poller"), (0, "Completed".into()));
    // Past the handle cap: its own container ends, nobody else's.
    assert_eq!(terminated(&status, "greedy").0, 134, "{status}");
    assert!(
        message(&status, "greedy").contains("resource table has no free keys"),
        "{status}"
    );
    assert_eq!(out.lines_of("neighbour"), ["slept 100 ms"]);
    // The neighbour's 100 ms sleep ended long before the poller's 4 s.
    let finished = |name: &str| {
        container_status(&status, name)["state"]["terminated"]["finishedAt"]
            .as_str()
            .unwrap_or_default()
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let lead = finished("poller").duration_since(finished("neighbour"));
    // finishedAt has whole seconds: a neighbour held back would end within a second of it.
    assert!(
        lead.as_secs_f64() >= 2.0,
        "the neighbour waited for the poller: {lead:?}"
    );
}
