//! The command line's own behaviour: flags and arguments, before any pod is read.
//!
//! These tests also make `cargo test --workspace` build the `wasmpod` binary (cargo builds a
//! package's binaries for its integration tests), which the end-to-end tests in `tests/` and
//! `shim/tests/` run.

use std::process::Command;

fn wasmpod(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmpod"))
        .args(args)
        .env_remove("WASMPOD_STATE_DIR")
        .env_remove("WASMPOD_CACHE_DIR")
        .output()
        .expect("run wasmpod");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_names_the_binary_and_the_crate_version() {
    let (code, stdout, _) = wasmpod(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("wasmpod {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_duration_flag_is_bad_input_naming_the_flag() {
    let (code, stdout, stderr) = wasmpod(&["run", "--backoff-base", "5 fortnights", "pod.yaml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("--backoff-base"), "{stderr}");
    assert!(stderr.contains("5 fortnights"), "{stderr}");
}

#[test]
fn a_bad_quantity_flag_is_bad_input_naming_the_flag() {
    let (code, _, stderr) = wasmpod(&["run", "--node-memory", "lots", "pod.yaml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--node-memory"), "{stderr}");
}

#[test]
fn a_missing_manifest_is_bad_input_on_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.yaml");
    let missing = missing.to_str().expect("utf-8 temp path");
    let (code, stdout, stderr) = wasmpod(&["validate", missing]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nope.yaml"), "{stderr}");
}
