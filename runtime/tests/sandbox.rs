//! The CRI-shaped sandbox API with real guests: create, start, wait, kill, remove.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wasmpod::engine::GuestIo;
use wasmpod::logs::{LogStream, read_lines};
use wasmpod::pod::ExecConfig;
use wasmpod::spec::{ContainerSpec, MountSpec, VolumeSource, VolumeSpec};
use wasmpod::{
    ContainerConfig, ContainerState, Engine, EngineConfig, ErrorKind, ExitReason, Sandbox,
    SandboxConfig,
};
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(30);

fn engine() -> Engine {
    Engine::new(EngineConfig {
        cache_dir: None,
        ..EngineConfig::default()
    })
    .expect("engine")
}

fn sandbox_config(dir: &std::path::Path, volumes: Vec<VolumeSpec>) -> SandboxConfig {
    SandboxConfig {
        volumes,
        ..SandboxConfig::new("test-pod", dir.to_owned())
    }
}

fn container(name: &str, module: &str, args: &[&str]) -> ContainerConfig {
    let mut spec = ContainerSpec::new(name, module);
    spec.argv.extend(args.iter().map(|a| a.to_string()));
    ContainerConfig::new(spec, 0)
}

/// A sandbox without volumes in a temporary directory (removed when the guard drops).
async fn empty_sandbox() -> (tempfile::TempDir, Sandbox) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::create(&engine(), sandbox_config(dir.path(), vec![]))
        .await
        .expect("sandbox");
    (dir, sandbox)
}

async fn run_to_end(sandbox: &Sandbox, config: ContainerConfig) -> wasmpod::ExitStatus {
    let name = config.spec.name.clone();
    sandbox.create_container(config).await.expect("create");
    sandbox.start_container(&name).expect("start");
    tokio::time::timeout(DEADLINE, sandbox.wait_container(&name))
        .await
        .expect("guest ended before the deadline")
        .expect("wait")
}

fn stdout_of(status: &wasmpod::ContainerStatus) -> Vec<String> {
    read_lines(status.log_path.as_deref().expect("a log file"))
        .expect("log file")
        .into_iter()
        .filter(|(s, _)| *s == LogStream::Stdout)
        .map(|(_, l)| l)
        .collect()
}

#[tokio::test]
async fn module_and_component_run_in_one_sandbox_and_log_separately() {
    let (_dir, sandbox) = empty_sandbox().await;
    for (name, module) in [("p1", guests::STDERR_P1), ("p2", guests::STDERR_P2)] {
        let exit = run_to_end(&sandbox, container(name, module, &[])).await;
        assert_eq!(exit.code, 0, "{name}: {exit:?}");
        assert_eq!(exit.reason, ExitReason::Completed);
        let status = sandbox.container_status(name).expect("status");
        assert_eq!(status.state, ContainerState::Exited);
        let lines = read_lines(status.log_path.as_deref().expect("a log file")).expect("log");
        assert_eq!(
            lines,
            vec![
                (LogStream::Stdout, "to stdout".to_owned()),
                (LogStream::Stderr, "to stderr".to_owned()),
                (LogStream::Stdout, "no newline".to_owned()),
            ],
            "{name}"
        );
    }
    sandbox.delete().await.expect("delete");
}

#[tokio::test]
async fn without_log_files_the_observer_is_the_only_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = sandbox_config(dir.path(), vec![]);
    config.logs = wasmpod::logs::LogSink::ObserverOnly;
    config.log_observer = Some({
        let seen = seen.clone();
        Arc::new(move |container, stream, line, _| {
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.push((container.to_owned(), stream, line.to_owned()));
        })
    });
    let sandbox = Sandbox::create(&engine(), config).await.expect("sandbox");
    let exit = run_to_end(&sandbox, container("p2", guests::STDERR_P2, &[])).await;
    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        sandbox.container_status("p2").expect("status").log_path,
        None
    );
    assert!(!sandbox.dir().log_dir("p2").exists());
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(
        seen,
        vec![
            ("p2".to_owned(), LogStream::Stdout, "to stdout".to_owned()),
            ("p2".to_owned(), LogStream::Stderr, "to stderr".to_owned()),
            ("p2".to_owned(), LogStream::Stdout, "no newline".to_owned()),
        ]
    );
    sandbox.delete().await.expect("delete");
}

#[tokio::test]
async fn exit_codes_traps_and_panics_are_the_containers_own() {
    let (_dir, sandbox) = empty_sandbox().await;
    let exit = run_to_end(&sandbox, container("exit3", guests::EXIT_P1, &["3"])).await;
    assert_eq!((exit.code, exit.reason), (3, ExitReason::Error));
    // wasip2 commands can only report success or failure.
    let exit = run_to_end(&sandbox, container("exit3-p2", guests::EXIT_P2, &["3"])).await;
    assert_eq!((exit.code, exit.reason), (1, ExitReason::Error));
    for (name, module) in [
        ("trap", guests::TRAP_P1),
        ("panic", guests::PANIC_P2),
        ("oob", guests::OOB_P1),
        ("stack", guests::STACKOVERFLOW_P2),
    ] {
        let exit = run_to_end(&sandbox, container(name, module, &[])).await;
        assert_eq!(exit.code, wasmpod::engine::EXIT_TRAP, "{name}: {exit:?}");
        assert_eq!(exit.reason, ExitReason::Error, "{name}");
        assert!(exit.message.is_some(), "{name}: a trap carries its message");
    }
    // The sandbox still runs containers after all of that.
    let exit = run_to_end(&sandbox, container("hello", guests::HELLO_P2, &[])).await;
    assert!(exit.success());
    let status = sandbox.container_status("hello").expect("status");
    assert_eq!(stdout_of(&status), vec!["hello from wasm"]);
}

#[tokio::test]
async fn lifecycle_transitions_are_guarded() {
    let (_dir, sandbox) = empty_sandbox().await;
    sandbox
        .create_container(container("sleeper", guests::SLEEP_P1, &["60000"]))
        .await
        .expect("create");
    let again = sandbox
        .create_container(container("sleeper", guests::SLEEP_P1, &["1"]))
        .await
        .expect_err("duplicate name");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    sandbox.start_container("sleeper").expect("start");
    let twice = sandbox.start_container("sleeper").expect_err("start twice");
    assert_eq!(twice.kind(), ErrorKind::FailedPrecondition);
    assert!(
        twice.to_string().contains("from running to running"),
        "{twice}"
    );
    let busy = sandbox
        .remove_container("sleeper")
        .expect_err("remove running");
    assert_eq!(busy.kind(), ErrorKind::FailedPrecondition);
    assert!(
        busy.to_string().contains("from running to removed"),
        "{busy}"
    );

    sandbox.kill_container("sleeper").expect("kill");
    let exit = tokio::time::timeout(DEADLINE, sandbox.wait_container("sleeper"))
        .await
        .expect("killed before the deadline")
        .expect("wait");
    assert_eq!(exit.code, wasmpod::engine::EXIT_KILLED);
    // Stopping or killing an exited container does nothing (CRI's StopContainer is idempotent).
    sandbox.kill_container("sleeper").expect("kill again");
    let again = sandbox
        .stop_container("sleeper", Duration::from_secs(1))
        .await
        .expect("stop exited");
    assert_eq!(again.map(|e| e.code), Some(wasmpod::engine::EXIT_KILLED));
    let removed = sandbox.remove_container("sleeper").expect("remove exited");
    assert_eq!(removed.state, ContainerState::Removed);
    assert_eq!(
        removed.exit.map(|e| e.code),
        Some(wasmpod::engine::EXIT_KILLED)
    );
    let gone = sandbox.container_status("sleeper").expect_err("removed");
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    // A removed name can be created again: that is how a restart works.
    let exit = run_to_end(&sandbox, container("sleeper", guests::SLEEP_P1, &["1"])).await;
    assert!(exit.success());
}

#[tokio::test]
async fn a_spinning_guest_is_killed_and_does_not_starve_its_neighbour() {
    let (_dir, sandbox) = empty_sandbox().await;
    sandbox
        .create_container(container("spin", guests::SPIN_P1, &[]))
        .await
        .expect("create");
    sandbox.start_container("spin").expect("start");
    let exit = run_to_end(&sandbox, container("neighbour", guests::SLEEP_P2, &["20"])).await;
    assert!(exit.success());
    sandbox.kill_container("spin").expect("kill");
    let exit = tokio::time::timeout(DEADLINE, sandbox.wait_container("spin"))
        .await
        .expect("spinner stopped")
        .expect("wait");
    assert_eq!(exit.code, wasmpod::engine::EXIT_KILLED);
}

#[tokio::test]
async fn containers_share_volumes_and_hostname() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine();
    let volume = VolumeSpec {
        name: "data".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit: None,
        },
    };
    let sandbox = Sandbox::create(&engine, sandbox_config(dir.path(), vec![volume]))
        .await
        .expect("sandbox");
    let mount = MountSpec {
        volume: "data".into(),
        mount_path: "/data".into(),
        read_only: false,
        sub_path: None,
    };
    let mut writer = container(
        "writer",
        guests::WRITE_P1,
        &["/data/a.txt", "shared", "bytes"],
    );
    writer.spec.mounts.push(mount.clone());
    assert!(run_to_end(&sandbox, writer).await.success());
    let mut reader = container("reader", guests::CAT_P2, &["/data/a.txt"]);
    reader.spec.mounts.push(mount);
    assert!(run_to_end(&sandbox, reader).await.success());
    let status = sandbox.container_status("reader").expect("status");
    assert_eq!(stdout_of(&status), vec!["shared bytes"]);

    let env = run_to_end(&sandbox, container("env", guests::ENV_P1, &[])).await;
    assert!(env.success());
    let status = sandbox.container_status("env").expect("status");
    assert!(stdout_of(&status).contains(&"HOSTNAME=test-pod".to_owned()));

    let volume = sandbox.volume_path("data").expect("volume");
    assert!(volume.join("a.txt").is_file());
    sandbox.delete().await.expect("delete");
    assert!(!volume.exists(), "emptyDir removed with the sandbox");
}

/// Runs `argv` in container `name`, stdin `input`; `(exit, stdout, stderr)`.
async fn exec(
    sandbox: &Sandbox,
    name: &str,
    argv: &[&str],
    input: &str,
) -> wasmpod::Result<(wasmpod::ExitStatus, String, String)> {
    use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
    let (stdout, stderr) = (
        MemoryOutputPipe::new(1 << 20),
        MemoryOutputPipe::new(1 << 20),
    );
    let config = ExecConfig {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        stdin: Some(Box::new(MemoryInputPipe::new(input.to_owned()))),
        io: GuestIo {
            stdout: Box::new(stdout.clone()),
            stderr: Box::new(stderr.clone()),
        },
        kill: tokio_util::sync::CancellationToken::new(),
    };
    let exit = tokio::time::timeout(DEADLINE, sandbox.exec(name, config))
        .await
        .expect("the exec ended before the deadline")?;
    let text = |pipe: MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
    Ok((exit, text(stdout), text(stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_a_command_of_the_containers_filesystem_inside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = VolumeSpec {
        name: "data".into(),
        source: VolumeSource::EmptyDir {
            memory: false,
            size_limit: None,
        },
    };
    let sandbox = Sandbox::create(&engine(), sandbox_config(dir.path(), vec![volume]))
        .await
        .expect("sandbox");
    let bin = sandbox.volume_path("data").expect("volume").join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::copy(guests::CAT_P2, bin.join("cat.wasm")).expect("copy cat");
    std::fs::copy(guests::ENV_P1, bin.join("env.wasm")).expect("copy env");
    std::fs::write(bin.join("script.sh"), "#!/bin/sh\necho hi\n").expect("script");
    std::fs::write(bin.join("../note.txt"), "written by the container\n").expect("note");
    let mut app = container("app", guests::SLEEP_P1, &["600000"]);
    app.spec.mounts.push(MountSpec {
        volume: "data".into(),
        mount_path: "/data".into(),
        read_only: false,
        sub_path: None,
    });
    app.spec
        .env
        .push(("PATH".into(), "/nowhere:/data/bin".into()));
    app.spec.env.push(("GREETING".into(), "hello".into()));
    sandbox.create_container(app).await.expect("create");
    let refused = exec(&sandbox, "app", &["/data/bin/env.wasm"], "")
        .await
        .expect_err("not running yet");
    assert_eq!(refused.kind(), ErrorKind::FailedPrecondition, "{refused}");
    sandbox.start_container("app").expect("start");

    // An absolute path, reading a file of the container's volume and its stdin.
    let (exit, stdout, stderr) = exec(
        &sandbox,
        "app",
        &["/data/bin/cat.wasm", "/data/note.txt", "-"],
        "and by stdin\n",
    )
    .await
    .expect("exec");
    assert!(exit.success(), "{exit:?} {stderr}");
    assert_eq!(stdout, "written by the container\nand by stdin\n");
    // A name on the container's PATH; it sees the container's environment.
    let (exit, stdout, _) = exec(&sandbox, "app", &["env.wasm"], "")
        .await
        .expect("exec");
    assert!(exit.success(), "{exit:?}");
    assert!(stdout.lines().any(|l| l == "GREETING=hello"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "HOSTNAME=test-pod"), "{stdout}");
    // Else a tool of the built-in toolbox, sandboxed like the container's guest.
    let (exit, stdout, _) = exec(&sandbox, "app", &["echo", "hi", "there"], "")
        .await
        .expect("exec");
    assert_eq!((exit.code, stdout.as_str()), (0, "hi there\n"));
    let (exit, stdout, stderr) = exec(&sandbox, "app", &["ls", "/data"], "")
        .await
        .expect("exec");
    assert!(exit.success(), "{exit:?} {stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["bin", "note.txt"]);
    let (exit, _, _) = exec(&sandbox, "app", &["ls", "/etc"], "")
        .await
        .expect("exec");
    assert_ne!(exit.code, 0, "the host's /etc is not the container's");
    let (exit, stdout, stderr) = exec(&sandbox, "app", &["ps"], "").await.expect("exec");
    assert!(exit.success(), "{exit:?} {stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("app") && l.contains("running")),
        "{stdout}"
    );
    // What is not there is not found; what is not Wasm cannot run.
    let (exit, _, stderr) = exec(&sandbox, "app", &["no-such-tool"], "")
        .await
        .expect("exec");
    assert_eq!(exit.code, wasmpod::pod::EXIT_NOT_FOUND);
    assert_eq!(stderr, "no-such-tool: not found\n");
    let (exit, _, stderr) = exec(&sandbox, "app", &["/data/../../etc/passwd"], "")
        .await
        .expect("exec");
    assert_eq!(exit.code, wasmpod::pod::EXIT_NOT_FOUND, "{stderr}");
    let (exit, _, stderr) = exec(&sandbox, "app", &["script.sh"], "")
        .await
        .expect("exec");
    assert_eq!(exit.code, wasmpod::pod::EXIT_NOT_EXECUTABLE, "{stderr}");
    assert!(stderr.starts_with("script.sh: cannot execute"), "{stderr}");

    // An exec'd process ends with its container: once it has printed the note (so it runs),
    // the container is killed while it waits for a file that never comes.
    let output = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 20);
    let long = {
        let sandbox = sandbox.clone();
        let config = ExecConfig {
            argv: [
                "/data/bin/cat.wasm",
                "--wait-ms",
                "600000",
                "/data/note.txt",
                "/data/never",
            ]
            .map(String::from)
            .to_vec(),
            stdin: None,
            io: GuestIo {
                stdout: Box::new(output.clone()),
                stderr: Box::new(wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 10)),
            },
            kill: tokio_util::sync::CancellationToken::new(),
        };
        tokio::spawn(async move { sandbox.exec("app", config).await })
    };
    let began = std::time::Instant::now();
    while output.contents().is_empty() {
        assert!(began.elapsed() < DEADLINE, "the long exec never printed");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    sandbox.kill_container("app").expect("kill");
    let exit = tokio::time::timeout(DEADLINE, long)
        .await
        .expect("the exec ended with its container")
        .expect("join")
        .expect("exec");
    assert_eq!(exit.code, wasmpod::engine::EXIT_KILLED, "{exit:?}");
    let gone = exec(&sandbox, "app", &["env.wasm"], "")
        .await
        .expect_err("not running any more");
    assert_eq!(gone.kind(), ErrorKind::FailedPrecondition);
    sandbox.delete().await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_execs_leave_their_container_and_its_neighbour_running() {
    let (_dir, sandbox) = empty_sandbox().await;
    for name in ["app", "neighbour"] {
        sandbox
            .create_container(container(name, guests::SLEEP_P1, &["600000"]))
            .await
            .expect("create");
        sandbox.start_container(name).expect("start");
    }
    let execs: Vec<_> = (0..100)
        .map(|i| {
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                let argv = ["echo", "exec", &i.to_string()];
                exec(&sandbox, "app", &argv, "").await
            })
        })
        .collect();
    for (i, exec) in execs.into_iter().enumerate() {
        let (exit, stdout, stderr) = exec.await.expect("join").expect("exec");
        assert!(exit.success(), "exec {i}: {exit:?} {stderr}");
        assert_eq!(stdout, format!("exec {i}\n"));
    }
    for name in ["app", "neighbour"] {
        let status = sandbox.container_status(name).expect("status");
        assert_eq!(status.state, ContainerState::Running, "{name}");
    }
    sandbox.delete().await.expect("delete");
}
