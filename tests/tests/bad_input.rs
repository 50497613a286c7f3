//! Bad input: a one-line error naming the field, exit code 2, nothing started, nothing left.

use wasmpod_guests as guests;
use wasmpod_tests::Wasmpod;

/// A valid two-container pod whose parts the cases below break one at a time.
fn pod(containers: &str, volumes: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  restartPolicy: Never\n{volumes}  containers:\n{containers}"
    )
}

fn container(name: &str, image: &str, extra: &str) -> String {
    format!("  - name: {name}\n    image: {image}\n{extra}")
}

/// Runs `manifest` and checks the failure: exit 2, one line on stderr containing `expected`,
/// no guest output, nothing under the state dir.
fn refused(manifest: &str, expected: &str) {
    let wasmpod = Wasmpod::new();
    let out = wasmpod.run_json(manifest, &[]);
    assert_eq!(
        out.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.is_empty(), "nothing ran: {}", out.stdout);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", out.stderr);
    assert!(
        lines[0].contains(expected),
        "{:?} lacks {expected:?}",
        lines[0]
    );
    assert_eq!(
        wasmpod.state_entries(),
        Vec::<std::path::PathBuf>::new(),
        "left behind"
    );
    // `validate` agrees (for manifest errors) or passes (for module errors found at load).
    let path = wasmpod.manifest("again.yaml", manifest);
    let validate = wasmpod.cmd(&["validate", path.to_str().expect("utf-8")]);
    assert!(validate.code == 2 || validate.code == 0, "{validate:?}");
}

#[test]
fn yaml_syntax_error() {
    refused("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n", "line");
}

#[test]
fn unknown_kind() {
    refused(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        "kind",
    );
    refused(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
        "kind",
    );
}

#[test]
fn a_missing_config_map_key_names_the_document_and_the_field() {
    let config_map =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n---\n";
    let env =
        "    env: [{name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: speed}}}]\n";
    let containers = container("web", guests::ENV_P1, env);
    refused(
        &format!("{config_map}{}", pod(&containers, "")),
        "document 2 (Pod \"bad\"): spec.containers[0].env[0].valueFrom.configMapKeyRef.key: \"speed\" not found in configmap \"settings\"",
    );
    refused(
        &pod(&container("web", guests::ENV_P1, env), ""),
        "spec.containers[0].env[0].valueFrom.configMapKeyRef: configmap \"settings\" not found",
    );
}

#[test]
fn duplicate_container_names() {
    let containers =
        container("web", guests::HELLO_P1, "") + &container("web", guests::HELLO_P2, "");
    refused(&pod(&containers, ""), "spec.containers[1].name");
}

#[test]
fn volume_mount_of_an_undeclared_volume() {
    let mounts = "    volumeMounts: [{name: data, mountPath: /data}]\n";
    let containers =
        container("a", guests::HELLO_P1, "") + &container("b", guests::HELLO_P1, mounts);
    refused(
        &pod(&containers, ""),
        "spec.containers[1].volumeMounts[0].name",
    );
}

#[test]
fn two_volumes_with_one_name() {
    let volumes = "  volumes:\n  - {name: data, emptyDir: {}}\n  - {name: data, emptyDir: {}}\n";
    refused(
        &pod(&container("a", guests::HELLO_P1, ""), volumes),
        "spec.volumes[1].name",
    );
}

#[test]
fn missing_wasm_file() {
    let containers =
        container("a", guests::HELLO_P1, "") + &container("b", "/nonexistent/app.wasm", "");
    refused(&pod(&containers, ""), "spec.containers[1].image");
}

#[test]
fn bytes_that_are_not_wasm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("script.wasm");
    std::fs::write(&fake, "#!/bin/sh\necho not wasm\n").expect("write");
    let containers = container("a", fake.to_str().expect("utf-8"), "");
    let wasmpod_error = "not a WebAssembly module or component";
    refused(&pod(&containers, ""), "spec.containers[0].image");
    refused(&pod(&containers, ""), wasmpod_error);
}

#[test]
fn privileged_is_not_supported() {
    let extra = "    securityContext:\n      privileged: true\n";
    let containers =
        container("a", guests::HELLO_P1, "") + &container("b", guests::HELLO_P1, extra);
    refused(
        &pod(&containers, ""),
        "spec.containers[1].securityContext.privileged: not supported by wasmpod",
    );
}

#[test]
fn host_network_is_not_supported() {
    let manifest = pod(
        &container("a", guests::HELLO_P1, ""),
        "  hostNetwork: true\n",
    );
    refused(&manifest, "spec.hostNetwork: not supported by wasmpod");
}

#[test]
fn mount_path_must_be_absolute() {
    let volumes = "  volumes:\n  - {name: data, emptyDir: {}}\n";
    let mounts = "    volumeMounts: [{name: data, mountPath: data}]\n";
    refused(
        &pod(&container("a", guests::HELLO_P1, mounts), volumes),
        "spec.containers[0].volumeMounts[0].mountPath",
    );
}

#[test]
fn unknown_fields_are_named() {
    let extra = "    imagePolicy: Always\n";
    refused(
        &pod(&container("a", guests::HELLO_P1, extra), ""),
        "spec.containers[0].imagePolicy",
    );
}

/// A module the host cannot read (here an I/O error: reading `/proc/self/mem` at offset 0) is
/// wasmpod's failure, not bad input: exit 125, still one line naming the field, nothing left.
#[test]
fn an_unreadable_module_is_wasmpods_failure_not_bad_input() {
    let wasmpod = Wasmpod::new();
    let out = wasmpod.run_json(&pod(&container("a", "/proc/self/mem", ""), ""), &[]);
    assert_eq!(out.code, 125, "stderr:\n{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "wasmpod: spec.containers[0].image: read module /proc/self/mem: \
         Input/output error (os error 5)"
    );
    assert_eq!(
        wasmpod.state_entries(),
        Vec::<std::path::PathBuf>::new(),
        "left behind"
    );
}
