//! The shim binary as containerd (or a person) invokes it, outside of any containerd.
//!
//! Having an integration test also makes `cargo test --workspace` build the binary, which the
//! containerd end-to-end tests (tests/tests/containerd.rs) put on containerd's `PATH`.

use std::process::Command;

use containerd_shim::api::DeleteResponse;
use containerd_shim::protos::protobuf::Message;

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
