//! The shim binary as containerd (or a person) invokes it, outside of any containerd.
//!
//! Having an integration test also makes `cargo test --workspace` build the binary, which the
//! containerd end-to-end tests (tests/tests/containerd.rs) put on containerd's `PATH`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use containerd_shim::api::{ConnectRequest, DeleteResponse, ShutdownRequest};
use containerd_shim::protos::protobuf::{CodedOutputStream, Message};
use containerd_shim::protos::shim_sync::{Client, TaskClient};
use containerd_shim::protos::ttrpc;
use containerd_shim::protos::types::introspection::RuntimeInfo;
use wasmpod_tests::containerd::sandbox_spec;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmpod-v1");

#[test]
fn dash_v_prints_the_shim_version_and_runtime_type() {
    let out = Command::new(SHIM).arg("-v").output().expect("run the shim");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("containerd-shim-wasmpod-v1:\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(
        stdout.contains("Runtime: io.containerd.wasmpod.v1"),
        "{stdout}"
    );
}

#[test]
fn delete_after_a_dead_shim_removes_its_pod_directory_and_reports_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let pod = state.join("k8s.io").join("pod1");
    std::fs::create_dir_all(wasmpod::pod::PodDir::new(&pod).volumes()).expect("pod dir");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).expect("bundle");
    // The address of a shim that no longer serves.
    let socket = dir.path().join("shim.sock");
    std::fs::write(&socket, "").expect("socket file");
    std::fs::write(
        bundle.join("address"),
        format!("unix://{}", socket.display()),
    )
    .expect("address");

    let out = Command::new(SHIM)
        .args(["-namespace", "k8s.io", "-id", "pod1", "-address"])
        .arg(dir.path().join("containerd.sock"))
        .arg("delete")
        .current_dir(&bundle)
        .env("WASMPOD_STATE_DIR", &state)
        .env("TTRPC_ADDRESS", dir.path().join("ttrpc.sock"))
        .output()
        .expect("run the shim");
    assert!(out.status.success(), "{out:?}");
    let response = DeleteResponse::parse_from_bytes(&out.stdout).expect("a DeleteResponse");
    assert_eq!(response.exit_status, 137, "{response:?}");
    assert!(response.exited_at.is_some(), "{response:?}");
    assert!(!pod.exists(), "the pod directory is left");
    assert!(!socket.exists(), "the dead shim's socket is left");
    assert!(
        state.join("k8s.io").exists(),
        "the namespace's directory is not the shim's to remove"
    );
}

#[test]
fn dash_info_prints_the_runtime_info_containerd_2_asks_for() {
    // containerd 2.x runs `-info` with its own environment only (no TTRPC_ADDRESS, no
    // namespace) and may write the runtime's options to stdin.
    let out = Command::new(SHIM)
        .arg("-info")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the shim");
    assert!(out.status.success(), "{out:?}");
    let info = RuntimeInfo::parse_from_bytes(&out.stdout).expect("a RuntimeInfo");
    assert_eq!(info.name, "io.containerd.wasmpod.v1");
    assert_eq!(info.version.version, env!("CARGO_PKG_VERSION"));
}

/// containerd 2.3's `containerd.runtime.bootstrap.v1.BootstrapParams` (instance_id = 1,
/// namespace = 2, containerd_version = 4), as it writes it to a shim's stdin on `start`.
fn bootstrap_params(id: &str, namespace: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut out = CodedOutputStream::vec(&mut bytes);
    out.write_string(1, id).expect("encode");
    out.write_string(2, namespace).expect("encode");
    out.write_string(4, "v2.3.4").expect("encode");
    out.flush().expect("encode");
    drop(out);
    bytes
}

#[test]
fn start_takes_the_bootstrap_message_containerd_2_3_writes_to_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).expect("bundle");
    let namespace = format!("wasmpod-test-{}", std::process::id());
    std::fs::write(
        bundle.join("config.json"),
        sandbox_spec("sb", "bootstrap").to_string(),
    )
    .expect("config.json");
    // The server `start` spawns connects to containerd's event socket first: a listener is
    // enough (the events it would publish are never read).
    let events = dir.path().join("ttrpc.sock");
    let _events = std::os::unix::net::UnixListener::bind(&events).expect("event socket");

    let mut start = Command::new(SHIM)
        .args(["-namespace", &namespace, "-id", "sb", "-address"])
        .arg(dir.path().join("containerd.sock"))
        .args(["-publish-binary", "/bin/true", "start"])
        .current_dir(&bundle)
        .env("TTRPC_ADDRESS", &events)
        .env("WASMPOD_STATE_DIR", dir.path().join("state"))
        .env("WASMPOD_CACHE_DIR", dir.path().join("cache"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the shim");
    let mut stdin = start.stdin.take().expect("stdin");
    stdin
        .write_all(&bootstrap_params("sb", &namespace))
        .expect("write the bootstrap message");
    drop(stdin);
    let out = start.wait_with_output().expect("start ends");
    assert!(out.status.success(), "{out:?}");
    // The plain address: every containerd from 1.6 to 2.3 takes it as a ttrpc task API v2 shim.
    let address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(address.starts_with("unix:///"), "{address:?}");

    // The spawned server serves the task API; with no task, Shutdown ends it.
    let client = Client::connect(&address).expect("connect to the shim");
    let tasks = TaskClient::new(client);
    let connected = tasks.connect(
        ttrpc::context::with_timeout(10_000_000_000),
        &ConnectRequest {
            id: "sb".into(),
            ..ConnectRequest::default()
        },
    );
    // No task was created: the service answers, with NotFound for the id.
    assert!(connected.is_err(), "{connected:?}");
    let _ = tasks.shutdown(
        ttrpc::context::with_timeout(10_000_000_000),
        &ShutdownRequest::default(),
    );
    let socket = Path::new(address.trim_start_matches("unix://"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(socket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the shim still serves at {address}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(socket);
}
