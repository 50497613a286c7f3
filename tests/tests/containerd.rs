//! End-to-end: `containerd-shim-wasmpod-v1` under a real containerd (Debian's, on a private
//! config), driven by `ctr` and by a CRI client doing what kubelet does.
//!
//! These tests need root and containerd; without containerd they fail saying how to install
//! it (`.ci/run` does), never skip.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1::{ContainerState, PodSandboxState};
use wasmpod_guests as guests;
use wasmpod_tests::containerd::{
    CRI_NAMESPACE, ContainerDef, Containerd, RUNTIME, alive, kill, log_lines, mounts_under,
};
use wasmpod_tests::{DEADLINE, Wasmpod, wait_until};

/// A containerd with the pause image, ready for CRI pods.
fn cri_containerd() -> Containerd {
    let containerd = Containerd::start();
    containerd.import_pause();
    containerd
}

fn module_image(containerd: &Containerd, module: &str, name: &str) -> String {
    containerd.import_module(CRI_NAMESPACE, module, name)
}

/// Whether a CRI log file has `line` on `stream`.
fn logged(path: &Path, stream: &str, line: &str) -> bool {
    log_lines(path)
        .iter()
        .any(|(s, l)| s == stream && l == line)
}

/// The network namespace inode of process `pid`.
fn netns_inode(pid: u32) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .expect("netns of the process")
        .ino()
}

fn wait_no_shims(containerd: &Containerd) {
    wait_until("every shim exited", || containerd.shim_pids().is_empty());
}

#[test]
fn image_build_with_wasm_layer_ships_the_module_as_the_layer() {
    let wasmpod = Wasmpod::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("layered.tar");
    let built = wasmpod.cmd(&[
        "image",
        "build",
        guests::HELLO_P2,
        "-o",
        archive.to_str().expect("utf-8 path"),
        "--name",
        "wasmpod.test/layered:1",
        "--wasm-layer",
    ]);
    assert_eq!(built.code, 0, "{built:?}");
    let module = std::fs::read(guests::HELLO_P2).expect("module");
    assert!(
        wasmpod::oci::read_module(&archive).expect("read back") == module,
        "the layer is the module"
    );
}

#[test]
fn ctr_run_runs_a_module_from_an_imported_image_and_returns_its_exit_code() {
    let containerd = Containerd::start();
    // The image as a user builds it: `wasmpod image build`, then `ctr images import`.
    let wasmpod = Wasmpod::new();
    let archive = containerd.dir().join("hello.tar");
    let archive = archive.to_str().expect("utf-8 path");
    let built = wasmpod.cmd(&[
        "image",
        "build",
        guests::HELLO_P1,
        "-o",
        archive,
        "--name",
        "wasmpod.test/hello:1",
    ]);
    assert_eq!(built.code, 0, "{built:?}");
    assert!(built.stdout.contains("wasmpod.test/hello:1"), "{built:?}");
    let imported = containerd.ctr("default", &["images", "import", archive]);
    assert_eq!(imported.code, 0, "{imported:?}");
    let hello = "wasmpod.test/hello:1";
    let ran = containerd.ctr(
        "default",
        &["run", "--rm", "--runtime", RUNTIME, hello, "hello-1"],
    );
    assert_eq!(ran.code, 0, "{ran:?}\n{}", containerd.log());
    assert_eq!(ran.stdout.trim(), "hello from wasm");

    let exit = containerd.import_module("default", guests::EXIT_P1, "exit");
    let ran = containerd.ctr(
        "default",
        &[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            &exit,
            "exit-1",
            "/exit.wasm",
            "7",
        ],
    );
    assert_eq!(ran.code, 7, "{ran:?}\n{}", containerd.log());

    // stdin: the container's guest reads what the client sends, to its end.
    let cat = containerd.import_module("default", guests::CAT_P2, "cat");
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let ran = containerd.ctr_with_input(
        "default",
        &[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            &cat,
            "cat-1",
            "/cat.wasm",
            "-",
        ],
        input.as_bytes(),
    );
    assert_eq!(ran.code, 0, "{ran:?}\n{}", containerd.log());
    assert_eq!(ran.stdout, input, "stdin came back changed");

    // Not a module: bad input, nothing written.
    let script = containerd.dir().join("script.wasm");
    std::fs::write(&script, "#!/bin/sh\n").expect("write");
    let bad = containerd.dir().join("bad.tar");
    let refused = wasmpod.cmd(&[
        "image",
        "build",
        script.to_str().expect("utf-8 path"),
        "-o",
        bad.to_str().expect("utf-8 path"),
        "--name",
        "bad",
    ]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("not a WebAssembly module"),
        "{refused:?}"
    );
    assert!(!bad.exists());
    wait_no_shims(&containerd);
    assert!(
        mounts_under(containerd.dir())
            .iter()
            .all(|m| !m.ends_with("rootfs")),
        "a rootfs is still mounted"
    );
}

#[test]
fn a_cri_pod_runs_wasm_containers_that_share_a_volume_and_localhost() {
    let containerd = cri_containerd();
    let write = module_image(&containerd, guests::WRITE_P1, "write");
    let cat = module_image(&containerd, guests::CAT_P1, "cat");
    let server = module_image(&containerd, guests::HTTP_SERVER_P2, "http-server");
    let get = module_image(&containerd, guests::HTTP_GET_P2, "http-get");
    let volume = containerd.dir().join("volume");
    std::fs::create_dir_all(&volume).expect("volume");

    let cri = containerd.cri();
    let pod = cri.run_pod("web", None);
    assert_eq!(cri.pod_state(&pod), PodSandboxState::SandboxReady);
    let server = cri.run_container(
        &pod,
        &ContainerDef::new(
            "server",
            &server,
            &[
                "127.0.0.1:8080",
                "--requests",
                "1",
                "--body",
                "hi from the server",
            ],
        ),
    );
    assert_eq!(cri.status(&server).state, ContainerState::ContainerRunning);
    let writer = cri.run_container(
        &pod,
        &ContainerDef::new("writer", &write, &["/data/message", "hello", "volume"])
            .mount(&volume, "/data"),
    );
    let reader = cri.run_container(
        &pod,
        &ContainerDef::new("reader", &cat, &["--wait-ms", "20000", "/data/message"])
            .mount(&volume, "/data"),
    );
    let client = cri.run_container(
        &pod,
        &ContainerDef::new("client", &get, &["http://127.0.0.1:8080/"]),
    );
    assert_eq!(containerd.shim_pids().len(), 1, "one shim serves the pod");

    let mut logs = Vec::new();
    for id in [&writer, &reader, &client, &server] {
        let status = cri.wait_exited(id);
        assert_eq!(
            (status.exit_code, status.reason.as_str()),
            (0, "Completed"),
            "{id}: {status:?}\n{:?}",
            log_lines(&status.log_path)
        );
        logs.push(status.log_path);
    }
    assert_eq!(
        std::fs::read_to_string(volume.join("message")).expect("the writer's file"),
        "hello volume\n"
    );
    assert!(
        logged(&logs[1], "stdout", "hello volume"),
        "{:?}",
        log_lines(&logs[1])
    );
    assert!(
        logged(&logs[2], "stdout", "hi from the server"),
        "{:?}",
        log_lines(&logs[2])
    );
    assert!(
        log_lines(&logs[3])
            .iter()
            .any(|(s, l)| s == "stdout" && l.starts_with("listening on 127.0.0.1:8080")),
        "{:?}",
        log_lines(&logs[3])
    );
    assert!(logs.iter().all(|l| l.starts_with(&pod.log_dir)));

    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
    assert!(!containerd.pod_state_dir().join(&pod.id).exists());
}

#[test]
fn stop_container_is_graceful_and_remove_pod_leaves_no_shim_cgroup_or_namespace() {
    let parent = format!("wasmpod-test-{}", std::process::id());
    let cgroup2 = cgroup2_mount();
    // The parent is the test's (kubelet's, in a cluster): removed however the test ends.
    let _parent = cgroup2
        .as_ref()
        .map(|mount| RemoveDirOnDrop(mount.join(&parent)));
    let containerd = cri_containerd();
    let graceful = module_image(&containerd, guests::GRACEFUL_P1, "graceful");
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let volume = containerd.dir().join("volume");
    std::fs::create_dir_all(&volume).expect("volume");

    let cri = containerd.cri();
    let pod = cri.run_pod("stopper", Some(&format!("/{parent}")));
    let gentle = cri.run_container(
        &pod,
        &ContainerDef::new("gentle", &graceful, &["/data/out"]).mount(&volume, "/data"),
    );
    let stubborn = cri.run_container(&pod, &ContainerDef::new("stubborn", &sleep, &["600000"]));
    let gentle_log = cri.status(&gentle).log_path;
    wait_until("the graceful guest works", || {
        logged(&gentle_log, "stdout", "working")
    });

    // The shim is the pod's host process: in the pod's network namespace and cgroup.
    let pids = containerd.shim_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let shim = pids[0];
    let netns = netns_inode(shim);
    assert_ne!(
        netns,
        netns_inode(std::process::id()),
        "the shim joined the pod's netns"
    );
    let pod_cgroup = cgroup2
        .as_ref()
        .map(|mount| mount.join(&parent).join(&pod.id));
    if let Some(cgroup) = &pod_cgroup {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).expect("cgroup.procs");
        assert!(
            procs.lines().any(|p| p == shim.to_string()),
            "the shim is in {}: {procs}",
            cgroup.display()
        );
    }
    let (_, memory) = cri.stats(&stubborn);
    assert!(memory > 0, "a running guest holds memory");

    let started = Instant::now();
    cri.stop_container(&gentle, 10);
    let status = cri.wait_exited(&gentle);
    assert_eq!((status.exit_code, status.reason.as_str()), (0, "Completed"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it stopped on request"
    );
    assert_eq!(
        std::fs::read_to_string(volume.join("out")).expect("the guest's goodbye"),
        "terminated: TERM\n"
    );
    assert!(logged(&status.log_path, "stdout", "terminated: TERM"));

    let started = Instant::now();
    cri.stop_container(&stubborn, 1);
    let status = cri.wait_exited(&stubborn);
    assert_eq!(status.exit_code, 137, "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it had its grace period"
    );

    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
    assert!(!alive(shim));
    assert!(!containerd.pod_state_dir().join(&pod.id).exists());
    if let Some(cgroup) = &pod_cgroup {
        assert!(!cgroup.exists(), "{} is left", cgroup.display());
    }
    let left: Vec<PathBuf> = std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == netns))
        .collect();
    assert!(
        left.is_empty(),
        "the pod's network namespace is left: {left:?}"
    );
}

#[test]
fn each_pod_has_its_own_shim_and_pods_are_isolated() {
    let containerd = cri_containerd();
    let server = module_image(&containerd, guests::HTTP_SERVER_P2, "http-server");
    let get = module_image(&containerd, guests::HTTP_GET_P2, "http-get");
    let cri = containerd.cri();
    let a = cri.run_pod("pod-a", None);
    let b = cri.run_pod("pod-b", None);
    // The same port in both pods: each has its own loopback.
    for (pod, body) in [(&a, "from a"), (&b, "from b")] {
        let server = cri.run_container(
            pod,
            &ContainerDef::new("server", &server, &["127.0.0.1:8080", "--body", body]),
        );
        let log = cri.status(&server).log_path;
        wait_until("the server listens", || {
            logged(&log, "stdout", "listening on 127.0.0.1:8080")
        });
    }
    assert_eq!(containerd.shim_pids().len(), 2, "one shim per pod");
    for (pod, body) in [(&a, "from a"), (&b, "from b")] {
        let client = cri.run_container(
            pod,
            &ContainerDef::new("client", &get, &["http://127.0.0.1:8080/"]),
        );
        let status = cri.wait_exited(&client);
        assert_eq!(status.exit_code, 0, "{:?}", log_lines(&status.log_path));
        assert!(
            logged(&status.log_path, "stdout", body),
            "{:?}",
            log_lines(&status.log_path)
        );
    }
    // Only pod a listens on 8081; pod b cannot reach it.
    cri.run_container(
        &a,
        &ContainerDef::new("private", &server, &["127.0.0.1:8081"]),
    );
    let probe = cri.run_container(
        &b,
        &ContainerDef::new(
            "probe",
            &get,
            &["http://127.0.0.1:8081/", "--wait-ms", "300"],
        ),
    );
    let status = cri.wait_exited(&probe);
    assert_eq!(status.exit_code, 1, "{:?}", log_lines(&status.log_path));

    for pod in [&a, &b] {
        cri.stop_pod(pod);
        cri.remove_pod(pod);
    }
    wait_no_shims(&containerd);
}

#[test]
fn a_shim_killed_mid_pod_leaves_exited_containers_and_no_orphans() {
    let containerd = cri_containerd();
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let cri = containerd.cri();
    let pod = cri.run_pod("doomed", None);
    let sleeper = cri.run_container(&pod, &ContainerDef::new("sleeper", &sleep, &["600000"]));
    assert_eq!(cri.status(&sleeper).state, ContainerState::ContainerRunning);
    let pids = containerd.shim_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    kill("KILL", pids[0]);
    wait_until("the shim died", || !alive(pids[0]));

    let status = cri.wait_exited(&sleeper);
    assert_ne!(status.exit_code, 0, "{status:?}");
    let give_up = Instant::now() + DEADLINE;
    while cri.pod_state(&pod) != PodSandboxState::SandboxNotready {
        assert!(Instant::now() < give_up, "the sandbox is still ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    assert!(containerd.shim_pids().is_empty(), "no shim was restarted");
    assert!(
        !containerd.pod_state_dir().join(&pod.id).exists(),
        "the dead shim's pod directory was cleaned up"
    );
    assert!(
        mounts_under(containerd.dir())
            .iter()
            .all(|m| !m.ends_with("rootfs")),
        "a rootfs is still mounted: {:?}",
        mounts_under(containerd.dir())
    );
}

#[test]
fn a_bad_module_fails_to_start_with_a_clear_error_and_the_sandbox_survives() {
    let containerd = cri_containerd();
    let not_wasm = wasmpod::oci::OciImage::new("wasmpod.test/not-wasm:1")
        .expect("name")
        .file("app.wasm", "#!/bin/sh\necho not wasm\n", 0o755)
        .entrypoint(["/app.wasm"]);
    let not_wasm = containerd.import(CRI_NAMESPACE, &not_wasm);
    let missing = wasmpod::oci::OciImage::new("wasmpod.test/missing:1")
        .expect("name")
        .file("README", "no module here\n", 0o644)
        .entrypoint(["/app.wasm"]);
    let missing = containerd.import(CRI_NAMESPACE, &missing);
    let hello = module_image(&containerd, guests::HELLO_P1, "hello");

    let cri = containerd.cri();
    let pod = cri.run_pod("careful", None);
    for (name, image, expected) in [
        (
            "not-wasm",
            &not_wasm,
            "not a WebAssembly module or component",
        ),
        (
            "missing",
            &missing,
            "module \"/app.wasm\" not found in the image",
        ),
    ] {
        // CRI creates the task (and so reaches the shim) in StartContainer.
        let error = cri
            .create_container(&pod, &ContainerDef::new(name, image, &[]))
            .and_then(|id| cri.start_container(&id))
            .expect_err("a bad module does not start");
        assert!(
            error.message().contains(expected),
            "{name}: {}",
            error.message()
        );
    }
    assert_eq!(cri.pod_state(&pod), PodSandboxState::SandboxReady);
    let good = cri.run_container(&pod, &ContainerDef::new("good", &hello, &[]));
    let status = cri.wait_exited(&good);
    assert_eq!(status.exit_code, 0);
    assert!(logged(&status.log_path, "stdout", "hello from wasm"));
    assert_eq!(containerd.shim_pids().len(), 1);
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
}

/// The attacker of the path-escape class under CRI: a container plants a relative link in a
/// volume, later containers' working directory goes through it. Each fails to start with a
/// clear error, no host file is read or written, and the pod goes on.
#[test]
fn links_planted_in_a_volume_never_lead_a_working_dir_out_of_it() {
    let containerd = cri_containerd();
    let ln = module_image(&containerd, guests::LN_P1, "ln");
    let cat = module_image(&containerd, guests::CAT_P1, "cat");
    let write = module_image(&containerd, guests::WRITE_P1, "write");
    let host = tempfile::tempdir().expect("tempdir");
    let outside = host.path().join("outside");
    std::fs::create_dir_all(outside.join("somedir")).expect("outside");
    std::fs::write(outside.join("somedir/secret"), "host secret\n").expect("secret");
    let volume = host.path().join("volume");
    std::fs::create_dir(&volume).expect("volume");

    let cri = containerd.cri();
    let pod = cri.run_pod("escape", None);
    let plant = cri.run_container(
        &pod,
        &ContainerDef::new("plant", &ln, &["../outside", "/data/up"]).mount(&volume, "/data"),
    );
    assert_eq!(cri.wait_exited(&plant).exit_code, 0);
    assert!(volume.join("up").is_symlink());
    for (name, image, args) in [
        ("reader", &cat, &["secret"][..]),
        ("writer", &write, &["planted", "pwned"][..]),
    ] {
        let def = ContainerDef::new(name, image, args)
            .mount(&volume, "/data")
            .working_dir("/data/up/somedir");
        let error = cri
            .create_container(&pod, &def)
            .and_then(|id| cri.start_container(&id))
            .expect_err("a working directory through a planted link does not start");
        assert!(
            error
                .message()
                .contains("workingDir \"/data/up/somedir\" leads out of its volume"),
            "{name}: {}",
            error.message()
        );
    }
    assert_eq!(cri.pod_state(&pod), PodSandboxState::SandboxReady);
    let neighbour = cri.run_container(
        &pod,
        &ContainerDef::new("neighbour", &write, &["/data/note", "fine"]).mount(&volume, "/data"),
    );
    assert_eq!(cri.wait_exited(&neighbour).exit_code, 0);
    let names = |dir: &Path| -> Vec<_> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name())
            .collect()
    };
    assert_eq!(names(&outside), ["somedir"], "nothing created outside");
    assert_eq!(names(&outside.join("somedir")), ["secret"]);
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
}

/// Removes an (empty) directory when dropped.
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Where the cgroup2 hierarchy is mounted, if anywhere.
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        after
            .starts_with("cgroup2 ")
            .then(|| before.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })
}

#[test]
fn a_container_past_its_memory_limit_is_oom_killed_and_its_neighbour_lives_on() {
    let containerd = cri_containerd();
    let membomb = module_image(&containerd, guests::MEMBOMB_P1, "membomb");
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let cri = containerd.cri();
    let pod = cri.run_pod("hungry", None);
    let neighbour = cri.run_container(&pod, &ContainerDef::new("neighbour", &sleep, &["600000"]));
    let bomb = cri.run_container(
        &pod,
        &ContainerDef {
            memory_limit: Some(32 << 20),
            ..ContainerDef::new("bomb", &membomb, &[])
        },
    );
    let status = cri.wait_exited(&bomb);
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (137, "OOMKilled"),
        "{status:?}"
    );
    assert_eq!(
        cri.status(&neighbour).state,
        ContainerState::ContainerRunning
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
}

#[test]
fn exec_sync_runs_commands_inside_a_running_container() {
    let containerd = cri_containerd();
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let tools = containerd.dir().join("tools");
    std::fs::create_dir_all(&tools).expect("tools");
    std::fs::copy(guests::CAT_P2, tools.join("cat.wasm")).expect("cat");
    std::fs::copy(guests::EXIT_P1, tools.join("exit.wasm")).expect("exit");
    std::fs::write(tools.join("note.txt"), "a note\n").expect("note");

    let cri = containerd.cri();
    let pod = cri.run_pod("exec", None);
    let app = cri.run_container(
        &pod,
        &ContainerDef::new("app", &sleep, &["600000"]).mount(&tools, "/tools"),
    );
    let ran = cri
        .exec_sync(&app, &["/tools/cat.wasm", "/tools/note.txt"], 0)
        .expect("ExecSync");
    assert_eq!(
        (ran.exit_code, String::from_utf8_lossy(&ran.stdout).as_ref()),
        (0, "a note\n"),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let failed = cri
        .exec_sync(&app, &["/tools/exit.wasm", "3"], 0)
        .expect("ExecSync");
    assert_eq!(failed.exit_code, 3);
    let missing = cri.exec_sync(&app, &["no-such-tool"], 0).expect("ExecSync");
    assert_eq!(missing.exit_code, 127);
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "no-such-tool: not found\n"
    );
    // A toolbox tool's own code: bad usage is 2, as from a shell's `sleep`.
    let usage = cri.exec_sync(&app, &["sleep"], 0).expect("ExecSync");
    assert_eq!(
        (
            usage.exit_code,
            String::from_utf8_lossy(&usage.stderr).lines().next()
        ),
        (2, Some("sleep: missing operand")),
    );
    // ExecSync's timeout ends the process (a probe's timeoutSeconds).
    let began = Instant::now();
    let timed_out = cri.exec_sync(
        &app,
        &["/tools/cat.wasm", "--wait-ms", "600000", "/tools/never"],
        1,
    );
    assert!(timed_out.is_err(), "{timed_out:?}");
    assert!(began.elapsed() < DEADLINE, "the timeout was not honoured");
    // The container is untouched by its execs.
    assert_eq!(cri.status(&app).state, ContainerState::ContainerRunning);
    cri.stop_container(&app, 1);
    let stopped = cri.exec_sync(&app, &["/tools/exit.wasm", "0"], 0);
    assert!(
        stopped.is_err(),
        "exec into a stopped container: {stopped:?}"
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
}

/// The seed demo: from a second container of a web pod, `netstat -tln` lists the server's
/// port, `wget -O-` fetches its page over the pod's loopback, `cat` reads what a third
/// container wrote to a shared emptyDir — all with the built-in toolbox.
#[test]
fn kubectl_exec_style_toolbox_commands_look_around_the_pod() {
    let containerd = cri_containerd();
    let server = module_image(&containerd, guests::HTTP_SERVER_P2, "http-server");
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let write = module_image(&containerd, guests::WRITE_P1, "write");
    let volume = containerd.dir().join("shared");
    std::fs::create_dir_all(&volume).expect("volume");

    let cri = containerd.cri();
    let pod = cri.run_pod("web", None);
    let web = cri.run_container(
        &pod,
        &ContainerDef::new(
            "web",
            &server,
            &["0.0.0.0:8080", "--body", "<h1>Welcome to wasmpod!</h1>"],
        ),
    );
    let log = cri.status(&web).log_path;
    wait_until("the server listens", || {
        log_lines(&log)
            .iter()
            .any(|(_, l)| l.starts_with("listening on"))
    });
    let writer = cri.run_container(
        &pod,
        &ContainerDef::new(
            "writer",
            &write,
            &["/data/a.txt", "written", "by", "writer"],
        )
        .mount(&volume, "/data"),
    );
    assert_eq!(cri.wait_exited(&writer).exit_code, 0);
    let second = cri.run_container(
        &pod,
        &ContainerDef::new("second", &sleep, &["600000"]).mount(&volume, "/data"),
    );
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let netstat = cri
        .exec_sync(&second, &["netstat", "-tln"], 10)
        .expect("netstat");
    assert_eq!(netstat.exit_code, 0, "{}", text(&netstat.stderr));
    let listens = text(&netstat.stdout);
    assert!(
        listens
            .lines()
            .any(|l| l.contains("0.0.0.0:8080") && l.contains("LISTEN")),
        "{listens}"
    );
    let wget = cri
        .exec_sync(
            &second,
            &["wget", "-q", "-O-", "http://127.0.0.1:8080/"],
            10,
        )
        .expect("wget");
    assert_eq!(wget.exit_code, 0, "{}", text(&wget.stderr));
    assert!(
        text(&wget.stdout).contains("<h1>Welcome to wasmpod!</h1>"),
        "{}",
        text(&wget.stdout)
    );
    let cat = cri
        .exec_sync(&second, &["cat", "/data/a.txt"], 10)
        .expect("cat");
    assert_eq!(
        (cat.exit_code, text(&cat.stdout).trim_end()),
        (0, "written by writer")
    );
    let unknown = cri
        .exec_sync(&second, &["vi", "/data/a.txt"], 10)
        .expect("vi");
    assert_eq!(unknown.exit_code, 127);
    // `ps` names the pod's containers as Kubernetes does, not by their ids.
    let ps = cri.exec_sync(&second, &["ps"], 10).expect("ps");
    let ps = text(&ps.stdout);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (name, state) in [("web", "running"), ("second", "running")] {
        assert!(
            rows.iter()
                .any(|row| row.first() == Some(&name) && row.get(1) == Some(&state)),
            "{name} {state}: {ps}"
        );
    }
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
}

/// The files kubelet bind-mounts into a container (its `/etc/hosts` with `hostAliases`, a
/// `resolv.conf`, the termination log, a configMap item by `subPath`) appear at their paths
/// in the image's rootfs, which is the container's `/`; containerd's own `/etc/hostname`
/// too. The termination message a guest writes reaches the host file kubelet reads; a
/// read-only item refuses writes; nothing stays mounted once the pod is removed.
#[test]
fn kubelet_file_mounts_appear_in_the_rootfs_and_the_termination_log_reaches_the_host() {
    let containerd = cri_containerd();
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let write = module_image(&containerd, guests::WRITE_P1, "write");
    let host = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| {
        let path = host.path().join(name);
        std::fs::write(&path, text).expect("host file");
        path
    };
    let hosts_text = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n\
                      169.254.64.2\tfiles\n\n# Entries added by HostAliases.\n\
                      169.254.64.99\tdb.internal\n";
    let resolv_text = "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                       nameserver 169.254.64.1\noptions ndots:5\n";
    let hosts = file("etc-hosts", hosts_text);
    let resolv = file("resolv.conf", resolv_text);
    let termination = file("termination-log", "");
    let config = file("app.conf", "level = debug\n");
    let kubelet_files = |def: ContainerDef| {
        def.mount(&hosts, "/etc/hosts")
            .mount(&resolv, "/etc/resolv.conf")
            .mount(&termination, "/dev/termination-log")
            .mount_ro(&config, "/config/app.conf")
    };

    let cri = containerd.cri();
    let pod = cri.run_pod("files", None);
    let app = cri.run_container(
        &pod,
        &kubelet_files(ContainerDef::new("app", &sleep, &["600000"])),
    );
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let run = |argv: &[&str]| {
        let out = cri.exec_sync(&app, argv, 10).expect("exec");
        assert_eq!(out.exit_code, 0, "{argv:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(run(&["cat", "/etc/hosts"]), hosts_text);
    assert_eq!(run(&["cat", "/etc/resolv.conf"]), resolv_text);
    assert_eq!(run(&["cat", "/config/app.conf"]), "level = debug\n");
    assert_eq!(run(&["cat", "/etc/hostname"]).trim_end(), "files");
    let root = run(&["ls", "/"]);
    let root: Vec<_> = root.split_whitespace().collect();
    for entry in ["config", "dev", "etc"] {
        assert!(root.contains(&entry), "ls / lists {entry}: {root:?}");
    }
    assert!(
        root.iter().any(|e| e.ends_with(".wasm")),
        "ls / lists the image's module: {root:?}"
    );

    let writer = cri.run_container(
        &pod,
        &kubelet_files(ContainerDef::new(
            "writer",
            &write,
            &["/dev/termination-log", "config", "missing"],
        )),
    );
    assert_eq!(cri.wait_exited(&writer).exit_code, 0);
    assert_eq!(
        std::fs::read_to_string(&termination).expect("termination log"),
        "config missing\n"
    );
    let tamper = cri.run_container(
        &pod,
        &kubelet_files(ContainerDef::new(
            "tamper",
            &write,
            &["/config/app.conf", "level = none"],
        )),
    );
    assert_eq!(
        cri.wait_exited(&tamper).exit_code,
        1,
        "a read-only item refuses writes"
    );
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        "level = debug\n"
    );

    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
    assert_eq!(mounts_under(containerd.dir()), Vec::<PathBuf>::new());
}

/// An in-place resize (CRI `UpdateContainerResources`, what kubelet sends for
/// `kubectl patch pod --subresource resize`): a running guest that then allocates past its
/// old memory limit succeeds; its twin, not resized, is OOMKilled at the same allocation.
#[test]
fn a_resized_container_allocates_past_its_old_memory_limit() {
    let containerd = cri_containerd();
    let membomb = module_image(&containerd, guests::MEMBOMB_P1, "membomb");
    let trigger = tempfile::tempdir().expect("tempdir");

    let cri = containerd.cri();
    let pod = cri.run_pod("resize", None);
    let bomb = |name: &str| {
        cri.run_container(
            &pod,
            &ContainerDef {
                memory_limit: Some(32 << 20),
                ..ContainerDef::new(name, &membomb, &["--wait-for", "/trigger/go", "48"])
                    .mount(trigger.path(), "/trigger")
            },
        )
    };
    let resized = bomb("resized");
    let twin = bomb("twin");
    cri.update_memory_limit(&resized, 128 << 20)
        .expect("UpdateContainerResources");
    std::fs::write(trigger.path().join("go"), "").expect("trigger");

    let status = cri.wait_exited(&resized);
    assert_eq!(status.exit_code, 0, "{status:?}");
    assert!(logged(&status.log_path, "stdout", "allocated 48 MiB"));
    let status = cri.wait_exited(&twin);
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (137, "OOMKilled"),
        "{status:?}"
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
}

/// A DNS server for one test, inside the network namespace at `netns` (a pod's), on
/// `address` port 53. It answers `names` (fully qualified, lower case, with the final dot)
/// with their IPv4 address and NXDOMAIN for every other name, and records the names asked,
/// until `stop` is set.
fn dns_server_in(
    netns: PathBuf,
    address: std::net::Ipv4Addr,
    names: Vec<(&'static str, std::net::Ipv4Addr)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::thread::JoinHandle<()>,
) {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        // This thread alone enters the pod's namespace; the socket lives there.
        let ns = std::fs::File::open(&netns).expect("open the pod's netns");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let socket = std::net::UdpSocket::bind((address, 53)).expect("bind the DNS server");
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .expect("timeout");
        ready_tx.send(()).expect("ready");
        let mut buf = vec![0; 4096];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut response = Message::response(query.metadata.id, query.metadata.op_code);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            for q in &query.queries {
                response.add_query(q.clone());
                let name = q.name().to_ascii().to_ascii_lowercase();
                log.lock().expect("log").push(name.clone());
                match names.iter().find(|(known, _)| *known == name) {
                    Some((_, ip)) if q.query_type() == RecordType::A => {
                        response.add_answer(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::A(A(*ip)),
                        ));
                    }
                    Some(_) => {}
                    None => response.metadata.response_code = ResponseCode::NXDomain,
                }
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, from);
            }
        }
    });
    ready_rx
        .recv_timeout(DEADLINE)
        .expect("the DNS server started");
    (asked, thread)
}

/// Names resolve as a Linux pod's do, from the container's own files (mounted as kubelet
/// mounts them), through CRI: its `/etc/hosts` for the name as given, then a DNS server the
/// test runs on a link-local address inside the pod's network namespace (as a cluster DNS
/// would answer) with the search domains and `ndots` of its `resolv.conf`. So a Service's
/// short name, `name.namespace` and its full name all reach the pod's server container; a
/// `hostAliases` name never goes to the DNS server; an unknown name does not resolve.
#[test]
fn names_resolve_through_the_pods_resolv_conf_and_a_link_local_dns_server() {
    let containerd = cri_containerd();
    let server = module_image(&containerd, guests::HTTP_SERVER_P2, "http-server");
    let sleep = module_image(&containerd, guests::SLEEP_P1, "sleep");
    let host = tempfile::tempdir().expect("tempdir");
    let nameserver = std::net::Ipv4Addr::new(169, 254, 77, 53);
    let hosts = host.path().join("etc-hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1\tlocalhost\n\n# Entries added by HostAliases.\n127.0.0.1\tdb.internal\n",
    )
    .expect("hosts");
    let resolv = host.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!(
            "search default.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver {nameserver}\noptions ndots:5\n"
        ),
    )
    .expect("resolv.conf");

    let cri = containerd.cri();
    let pod = cri.run_pod("dns", None);
    let web = cri.run_container(
        &pod,
        &ContainerDef::new(
            "web",
            &server,
            &["127.0.0.1:8080", "--body", "found by name"],
        ),
    );
    let log = cri.status(&web).log_path;
    wait_until("the server listens", || {
        log_lines(&log)
            .iter()
            .any(|(_, l)| l.starts_with("listening on"))
    });
    // The pod's namespace (the shim's): give its loopback the server's link-local address.
    let shim = *containerd.shim_pids().first().expect("the pod's shim");
    let netns = PathBuf::from(format!("/proc/{shim}/ns/net"));
    for args in [
        vec!["ip", "link", "set", "lo", "up"],
        vec!["ip", "addr", "add", "169.254.77.53/32", "dev", "lo"],
    ] {
        let status = std::process::Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(&args)
            .status()
            .expect("nsenter");
        assert!(status.success(), "{args:?}");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (asked, dns) = dns_server_in(
        netns,
        nameserver,
        vec![(
            "web.default.svc.cluster.local.",
            std::net::Ipv4Addr::LOCALHOST,
        )],
        stop.clone(),
    );
    let client = cri.run_container(
        &pod,
        &ContainerDef::new("client", &sleep, &["600000"])
            .mount(&hosts, "/etc/hosts")
            .mount_ro(&resolv, "/etc/resolv.conf"),
    );
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    for name in [
        "web",
        "web.default",
        "web.default.svc.cluster.local",
        "db.internal",
    ] {
        let url = format!("http://{name}:8080/");
        let wget = cri
            .exec_sync(&client, &["wget", "-q", "-O-", &url], 10)
            .expect("wget");
        assert_eq!(
            (wget.exit_code, text(&wget.stdout).as_str()),
            (0, "found by name"),
            "{url}: {}",
            text(&wget.stderr)
        );
    }
    let unknown = cri
        .exec_sync(&client, &["wget", "-q", "-O-", "http://nowhere:8080/"], 10)
        .expect("wget");
    assert_ne!(unknown.exit_code, 0, "an unknown name does not resolve");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    dns.join().expect("the DNS server");
    let asked = asked.lock().expect("asked").clone();
    assert_eq!(
        asked.first().map(String::as_str),
        Some("web.default.svc.cluster.local."),
        "the short name went through the search domains: {asked:?}"
    );
    assert!(
        !asked.iter().any(|n| n == "db.internal."),
        "the hosts file answers before any nameserver: {asked:?}"
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    wait_no_shims(&containerd);
}

/// `GET path` over a real TCP connection to `127.0.0.1:port` of the network namespace at
/// `netns` (a native client beside the pod's process), with `Connection: close`.
fn get_in_netns(netns: PathBuf, port: u16, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        // This thread alone enters the pod's namespace.
        let ns = std::fs::File::open(&netns).expect("open the pod's netns");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        std::io::Write::write_all(&mut stream, request.as_bytes()).expect("request");
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).expect("response");
        response
    })
    .join()
    .expect("the client thread")
}

#[test]
fn a_wasi_http_service_serves_on_its_container_port_and_ends_0_when_stopped() {
    let containerd = cri_containerd();
    let service = module_image(&containerd, guests::HTTP_SERVICE_P2, "http-service");
    let fetch = module_image(&containerd, guests::HTTP_FETCH_P2, "http-fetch");
    let cri = containerd.cri();
    let pod = cri.run_pod("service", None);
    let web = cri.run_container(&pod, &ContainerDef::new("web", &service, &[]).port(8081));
    assert_eq!(cri.status(&web).state, ContainerState::ContainerRunning);

    // A sibling's wasi:http client, over the pod's loopback.
    let client = cri.run_container(
        &pod,
        &ContainerDef::new(
            "client",
            &fetch,
            &[
                "-X",
                "POST",
                "-d",
                "over the loopback",
                "http://127.0.0.1:8081/echo",
            ],
        ),
    );
    let status = cri.wait_exited(&client);
    assert_eq!(status.exit_code, 0, "{:?}", log_lines(&status.log_path));
    assert!(
        logged(&status.log_path, "stdout", "over the loopback"),
        "{:?}",
        log_lines(&status.log_path)
    );

    // A native client in the pod's network namespace, at its real socket (the stand-in CNI
    // plugin leaves the namespace's loopback down).
    let shim = *containerd.shim_pids().first().expect("the pod's shim");
    let netns = PathBuf::from(format!("/proc/{shim}/ns/net"));
    let up = std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["ip", "link", "set", "lo", "up"])
        .status()
        .expect("nsenter");
    assert!(up.success());
    let response = get_in_netns(netns, 8081, "/");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello from wasi:http\n"), "{response}");

    // Each request's output is the container's log.
    let log = cri.status(&web).log_path;
    assert!(
        logged(&log, "stdout", "POST /echo"),
        "{:?}",
        log_lines(&log)
    );

    // StopContainer is the termination request: the service drains and exits 0.
    cri.stop_container(&web, 10);
    let status = cri.wait_exited(&web);
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (0, "Completed"),
        "{:?}",
        log_lines(&log)
    );
}
