//! `wasmpod run` end to end: volumes, init containers, restart policies, both guest kinds.

use wasmpod_guests as guests;
use wasmpod_tests::{Wasmpod, restart_count, terminated, wasm_layer_archives};

#[test]
fn volume_demo_reader_prints_what_the_writer_wrote_and_the_empty_dir_is_gone() {
    let wasmpod = Wasmpod::new();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/volume-demo/pod.yaml"
    );
    let out = wasmpod.cmd(&["run", "-o", "json", example]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.lines_of("reader"),
        vec!["hello from the writer container of volume-demo"]
    );
    let status = out.json();
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(terminated(&status, "writer"), (0, "Completed".into()));
    assert_eq!(terminated(&status, "reader"), (0, "Completed".into()));
    let entries = wasmpod.state_entries();
    assert!(
        entries
            .iter()
            .all(|e| !e.to_string_lossy().contains("volumes")),
        "emptyDir left behind: {entries:?}"
    );
    assert!(
        entries.iter().any(|e| e.ends_with("logs/reader/0.log")),
        "logs are kept: {entries:?}"
    );
    let pod_dir = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("pod directory: "))
        .expect("the pod directory is named");
    let logs = wasmpod.cmd(&["logs", pod_dir, "-c", "reader"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert_eq!(
        logs.stdout,
        "hello from the writer container of volume-demo\n"
    );
    let missing = wasmpod.cmd(&["logs", pod_dir, "-c", "nobody"]);
    assert_ne!(missing.code, 0);
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
}

#[test]
fn init_demo_prepares_the_file_before_the_app_starts() {
    let wasmpod = Wasmpod::new();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/init-demo/pod.yaml"
    );
    let out = wasmpod.cmd(&["run", example]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.lines_of("web"),
        vec!["<h1>prepared by the init container</h1>"]
    );
    // The status lines walk through Init:0/1 before the app runs, as `kubectl get pods -w`.
    let init = out.stdout.find("Init:0/1").expect("Init:0/1 line");
    let done = out.stdout.find("Completed").expect("Completed line");
    assert!(init < done, "{}", out.stdout);
}

#[test]
fn init_containers_run_in_order_and_a_failing_one_keeps_the_apps_from_starting() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: gated}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, emptyDir: {{}}}}]
  initContainers:
  - name: first
    image: {write}
    args: ["--append", "/data/order", "first"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: second
    image: {write}
    args: ["--append", "/data/order", "second"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: print
    image: {cat}
    args: ["/data/order"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: fail
    image: {exit}
    args: ["7"]
  containers:
  - name: app
    image: {hello}
"#,
        write = guests::WRITE_P1,
        cat = guests::CAT_P2,
        exit = guests::EXIT_P1,
        hello = guests::HELLO_P1,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 1, "a failed pod exits 1: {}", out.stderr);
    assert_eq!(out.lines_of("print"), vec!["first", "second"]);
    let status = out.json();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(terminated(&status, "fail"), (7, "Error".into()));
    assert!(out.lines_of("app").is_empty());
    let app = &status["containerStatuses"][0];
    assert_eq!(
        app["state"]["waiting"]["reason"], "PodInitializing",
        "{app}"
    );
}

#[test]
fn on_failure_restarts_with_growing_back_off_and_never_does_not() {
    let wasmpod = Wasmpod::new();
    let manifest = |policy: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: flaky-{lower}}}
spec:
  restartPolicy: {policy}
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
  - name: flaky
    image: {flaky}
    args: ["/data/count", "4"]
    volumeMounts: [{{name: data, mountPath: /data}}]
"#,
            lower = policy.to_lowercase(),
            flaky = guests::FLAKY_P1,
        )
    };
    let base_ms = 40;
    let base = format!("{base_ms}ms");
    let out = wasmpod.run_json(&manifest("OnFailure"), &["--backoff-base", &base]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.lines_of("flaky"),
        vec!["run 1", "run 2", "run 3", "run 4"]
    );
    let status = out.json();
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(restart_count(&status, "flaky"), 3);
    assert_eq!(terminated(&status, "flaky"), (0, "Completed".into()));
    let last = &status["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].as_i64(), last["reason"].as_str()),
        (Some(1), Some("Error"))
    );
    assert!(out.stdout.contains("CrashLoopBackOff") || out.stderr.contains("CrashLoopBackOff"));

    // Each run has its own log file; the gaps between runs grow: base, 2×, 4× at least.
    let pod_dir = std::fs::read_dir(wasmpod.state_dir())
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("flaky-onfailure"))
        .expect("pod dir");
    let starts: Vec<jiff::Timestamp> = (0..4)
        .map(|attempt| {
            let log = std::fs::read_to_string(pod_dir.join(format!("logs/flaky/{attempt}.log")))
                .expect("attempt log");
            let time = log.split(' ').next().expect("record time");
            time.parse().expect("timestamp")
        })
        .collect();
    for (i, pair) in starts.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0]).as_millis();
        let minimum = i128::from(base_ms) << i;
        assert!(
            gap >= minimum,
            "restart {} came after {gap} ms, back-off is {minimum} ms",
            i + 1
        );
    }

    let out = wasmpod.run_json(&manifest("Never"), &["--backoff-base", &base]);
    assert_eq!(out.code, 1);
    assert_eq!(out.lines_of("flaky"), vec!["run 1"]);
    let status = out.json();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(restart_count(&status, "flaky"), 0);
    assert_eq!(terminated(&status, "flaky"), (1, "Error".into()));
}

#[test]
fn a_wasip1_module_and_a_wasip2_component_run_in_one_pod_with_the_pod_identity() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: mixed
  namespace: team-a
  uid: 0b5c3c9e-1111-2222-3333-444455556666
spec:
  restartPolicy: Never
  containers:
  - name: module
    image: {p1}
    command: ["env", "--flag"]
    args: ["$(GREETING)", "$$(GREETING)"]
    env:
    - {{name: GREETING, value: hi}}
    - {{name: NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
  - name: component
    image: {p2}
    args: ["x"]
    env:
    - {{name: UID, valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}}}
"#,
        p1 = guests::ENV_P1,
        p2 = guests::ENV_P2,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let module = out.lines_of("module");
    for expected in [
        "arg[0]=env",
        "arg[1]=--flag",
        "arg[2]=hi",
        "arg[3]=$(GREETING)",
        "HOSTNAME=mixed",
        "NS=team-a",
        "GREETING=hi",
    ] {
        assert!(
            module.contains(&expected.to_owned()),
            "{expected} missing: {module:?}"
        );
    }
    let component = out.lines_of("component");
    for expected in [
        "arg[0]=env.wasm",
        "arg[1]=x",
        "HOSTNAME=mixed",
        "UID=0b5c3c9e-1111-2222-3333-444455556666",
    ] {
        assert!(
            component.contains(&expected.to_owned()),
            "{expected} missing: {component:?}"
        );
    }
}

/// A file as `kubectl create configmap`/`secret ... --dry-run=client -o yaml` and a pod print
/// them together: the pod's env reads both.
#[test]
fn config_maps_and_secrets_beside_the_pod_reach_its_env() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"apiVersion: v1
data:
  mode: fast
  retries: "3"
kind: ConfigMap
metadata:
  creationTimestamp: null
  name: settings
---
apiVersion: v1
data:
  password: aHVudGVyMg==
kind: Secret
metadata:
  creationTimestamp: null
  name: creds
---
apiVersion: v1
kind: Pod
metadata: {{name: configured}}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {p2}
    envFrom:
    - configMapRef: {{name: settings}}
      prefix: APP_
    env:
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: DSN, value: "db://$(APP_mode)/$(APP_retries)"}}
"#,
        p2 = guests::ENV_P2,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = out.lines_of("app");
    for expected in [
        "APP_mode=fast",
        "APP_retries=3",
        "PASSWORD=hunter2",
        "DSN=db://fast/3",
    ] {
        assert!(
            lines.contains(&expected.to_owned()),
            "{expected} missing: {lines:?}"
        );
    }
}

/// configMap and secret volumes (with `items`, modes written in YAML 1.1 octal as manifests
/// do): the guest reads the files, cannot write them, and nothing is left when the pod ends.
#[test]
fn config_map_and_secret_volumes_are_read_only_files_of_the_pod() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config}}
data:
  index.html: "<h1>configured</h1>"
  ignored.txt: "not an item"
---
apiVersion: v1
kind: Secret
metadata: {{name: tls}}
stringData:
  key.pem: "-----BEGIN KEY-----"
---
apiVersion: v1
kind: Pod
metadata: {{name: projected}}
spec:
  restartPolicy: Never
  volumes:
  - name: site
    configMap:
      name: web-config
      defaultMode: 0444
      items: [{{key: index.html, path: public/index.html}}]
  - name: certs
    secret: {{secretName: tls, defaultMode: 0400}}
  containers:
  - name: reader
    image: {cat}
    args: ["/site/public/index.html", "/certs/key.pem"]
    volumeMounts:
    - {{name: site, mountPath: /site}}
    - {{name: certs, mountPath: /certs}}
  - name: writer
    image: {write}
    args: ["/site/public/index.html", "defaced"]
    volumeMounts: [{{name: site, mountPath: /site}}]
"#,
        cat = guests::CAT_P1,
        write = guests::WRITE_P2,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 1, "the writer fails: {}", out.stderr);
    let status = out.json();
    assert_eq!(terminated(&status, "reader"), (0, "Completed".into()));
    assert_eq!(terminated(&status, "writer"), (1, "Error".into()));
    assert_eq!(
        out.lines_of("reader"),
        vec!["<h1>configured</h1>-----BEGIN KEY-----"]
    );
    let error = out.lines_of("writer").join("\n");
    assert!(
        error.starts_with("write /site/public/index.html:"),
        "{error}"
    );
    let entries = wasmpod.state_entries();
    assert!(
        entries
            .iter()
            .all(|e| !e.to_string_lossy().contains("volumes")),
        "volumes left behind: {entries:?}"
    );
}

#[test]
fn a_read_only_host_path_refuses_writes_and_the_host_file_is_unchanged() {
    let wasmpod = Wasmpod::new();
    let host = tempfile::tempdir().expect("tempdir");
    std::fs::write(host.path().join("keep.txt"), "original\n").expect("host file");
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: readonly}}
spec:
  restartPolicy: Never
  volumes:
  - name: host
    hostPath: {{path: {dir}, type: Directory}}
  containers:
  - name: writer
    image: {write}
    args: ["/host/keep.txt", "overwritten"]
    volumeMounts: [{{name: host, mountPath: /host, readOnly: true}}]
  - name: reader
    image: {cat}
    args: ["/host/keep.txt"]
    volumeMounts: [{{name: host, mountPath: /host, readOnly: true}}]
"#,
        dir = host.path().display(),
        write = guests::WRITE_P2,
        cat = guests::CAT_P1,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 1, "the writer fails, so the pod fails");
    let status = out.json();
    assert_eq!(terminated(&status, "writer"), (1, "Error".into()));
    assert_eq!(terminated(&status, "reader"), (0, "Completed".into()));
    assert_eq!(out.lines_of("reader"), vec!["original"]);
    let error = out.lines_of("writer").join("\n");
    assert!(error.starts_with("write /host/keep.txt:"), "{error}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("keep.txt")).expect("host file"),
        "original\n"
    );
}

#[test]
fn working_dir_is_honoured_inside_the_mounts() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: workdir}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, emptyDir: {{}}}}]
  initContainers:
  - name: prepare
    image: {write}
    args: ["/sub/file.txt", "relative read works"]
    volumeMounts: [{{name: data, mountPath: /sub, subPath: sub}}]
  containers:
  - name: p1
    image: {cat1}
    workingDir: /data/sub
    args: ["file.txt"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: p2
    image: {cat2}
    workingDir: /data/sub
    args: ["file.txt"]
    volumeMounts: [{{name: data, mountPath: /data}}]
"#,
        write = guests::WRITE_P1,
        cat1 = guests::CAT_P1,
        cat2 = guests::CAT_P2,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.lines_of("p1"), vec!["relative read works"]);
    assert_eq!(out.lines_of("p2"), vec!["relative read works"]);
}

#[test]
fn the_readme_demo_pod_shares_network_and_volume() {
    let wasmpod = Wasmpod::new();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/shared-pod/pod.yaml"
    );
    let out = wasmpod.cmd(&["run", "-o", "json", example]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines_of("fetch"), vec!["hello from the web container"]);
    assert_eq!(
        out.lines_of("reader"),
        vec!["hello from the writer container of shared-pod"]
    );
    assert_eq!(out.json()["phase"], "Succeeded");
}

#[test]
fn an_image_archive_runs_as_its_module() {
    let wasmpod = Wasmpod::new();
    // The archives `wasmpod image build` writes: the module as a rootfs file, and as the
    // layer itself; `docker save`/`ctr export` archives have the same layout.
    let mut images = Vec::new();
    for (name, module, flags) in [
        ("rootfs.tar", guests::EXIT_P1, &[][..]),
        ("layer.tar", guests::EXIT_P2, &["--wasm-layer"][..]),
    ] {
        let archive = wasmpod.manifest(name, "");
        let archive = archive.to_str().expect("utf-8 path").to_owned();
        let mut args = vec!["image", "build", module, "-o", &archive, "--name", "t"];
        args.extend_from_slice(flags);
        let built = wasmpod.cmd(&args);
        assert_eq!(built.code, 0, "{}", built.stderr);
        images.push(archive);
    }
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: archives}}
spec:
  restartPolicy: Never
  containers:
  - name: rootfs
    image: {rootfs}
    args: ["3"]
  - name: layer
    image: {layer}
    args: ["0"]
"#,
        rootfs = images[0],
        layer = images[1],
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 1, "exit 3 fails the pod: {}", out.stderr);
    let status = out.json();
    assert_eq!(terminated(&status, "rootfs"), (3, "Error".into()));
    assert_eq!(terminated(&status, "layer"), (0, "Completed".into()));

    // An archive that holds no module is bad input, named.
    let empty = wasmpod.manifest("empty.tar", "");
    let mut builder = tar::Builder::new(std::fs::File::create(&empty).expect("create"));
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    let mut header = tar::Header::new_ustar();
    header.set_size(index.len() as u64);
    builder
        .append_data(&mut header, "index.json", &index[..])
        .expect("append");
    builder.finish().expect("finish");
    drop(builder);
    let bad = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n  containers:\n  - name: c\n    image: {}\n",
        empty.display()
    );
    let out = wasmpod.run_json(&bad, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("empty.tar: index.json lists no image manifest"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_archive_with_a_layer_of_each_wasm_media_type_runs() {
    // The archives the shim runs in shim/tests/content.rs, byte for byte: each Wasm OCI layer
    // media type, each image for the `wasm` platform. A pod of one container per archive,
    // each named by a path relative to the manifest.
    let wasmpod = Wasmpod::new();
    let archives = wasm_layer_archives(wasmpod.root.path());
    let mut manifest =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: layers}\nspec:\n  restartPolicy: Never\n  containers:\n"
            .to_owned();
    for (i, archive) in archives.iter().enumerate() {
        let file = archive.path.file_name().expect("a file name");
        manifest.push_str(&format!(
            "  - name: c{i}\n    image: {}\n    args: [\"{}\"]\n",
            file.to_str().expect("utf-8 name"),
            10 + i
        ));
    }
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 1, "non-zero exits fail the pod: {}", out.stderr);
    let status = out.json();
    for (i, archive) in archives.iter().enumerate() {
        assert_eq!(
            terminated(&status, &format!("c{i}")),
            (10 + i as i64, "Error".into()),
            "{}: {}",
            archive.media_type,
            out.stderr
        );
    }
}
