//! Manifest builders and assertions shared by the parser's tests.

use std::path::Path;

use super::parse_pod;
use crate::spec::{ContainerSpec, PodSpec, SpecError};

/// The directory the test manifests are "read from": images resolve against it.
const BASE: &str = "/pods";

/// Parses `text` as if it were read from [`BASE`].
pub(super) fn parse(text: &str) -> Result<PodSpec, SpecError> {
    parse_pod(text, Path::new(BASE))
}

/// A pod named `demo` whose `spec` is `spec_yaml` (written at column 0).
pub(super) fn pod(spec_yaml: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo\nspec:\n{}",
        indent(spec_yaml)
    )
}

/// A pod whose `spec` is `spec_yaml` (written at column 0) and one container `a`.
pub(super) fn pod_with_spec(spec_yaml: &str) -> String {
    let spec_yaml = spec_yaml.trim_end();
    pod(&format!(
        "{spec_yaml}\ncontainers: [{{name: a, image: a.wasm}}]"
    ))
}

/// A pod whose `metadata` is the flow mapping `metadata_yaml`, with one container `a`.
pub(super) fn pod_with_metadata(metadata_yaml: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {metadata_yaml}\nspec: {{containers: [{{name: a, image: a.wasm}}]}}\n"
    )
}

/// A pod with one container `web` (image `web.wasm`) extended by `container_yaml`.
pub(super) fn pod_with_container(container_yaml: &str) -> String {
    let mut spec = String::from("containers:\n- name: web\n  image: web.wasm\n");
    for line in container_yaml.lines() {
        spec.push_str(&format!("  {line}\n"));
    }
    pod(&spec)
}

/// A pod with volumes `data` and `logs` and a container `web` whose `volumeMounts` is
/// `mounts_yaml`.
pub(super) fn mount_pod(mounts_yaml: &str) -> String {
    pod(&format!(
        "volumes: [{{name: data, emptyDir: {{}}}}, {{name: logs, emptyDir: {{}}}}]\ncontainers:\n- name: web\n  image: web.wasm\n  volumeMounts: {mounts_yaml}\n"
    ))
}

/// `text` indented by two spaces, line by line.
fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// The parsed pod; panics with the error and the manifest when parsing fails.
pub(super) fn ok(text: &str) -> PodSpec {
    match parse(text) {
        Ok(spec) => spec,
        Err(e) => panic!("unexpected error: {e}\n{text}"),
    }
}

/// The error parsing `text` fails with, checked to be one line without a trailing period.
pub(super) fn err(text: &str) -> String {
    match parse(text) {
        Ok(spec) => panic!("expected an error, got {spec:?}\n{text}"),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "multi-line error: {message:?}");
            assert!(!message.ends_with('.'), "trailing period: {message:?}");
            message
        }
    }
}

/// Asserts that each manifest fails with exactly its error.
pub(super) fn assert_errors<T: AsRef<str>, W: AsRef<str>>(cases: &[(T, W)]) {
    for (text, want) in cases {
        assert_eq!(err(text.as_ref()), want.as_ref(), "{}", text.as_ref());
    }
}

/// The pod's first app container.
pub(super) fn container(spec: &PodSpec) -> &ContainerSpec {
    &spec.containers[0]
}

/// An environment from `(name, value)` pairs.
pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Owned copies of `items`.
pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Asserts that `uid` is a version-4 UUID.
pub(super) fn assert_uuid(uid: &str) {
    let groups: Vec<&str> = uid.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lengths, vec![8, 4, 4, 4, 12], "{uid}");
    assert!(
        uid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{uid}"
    );
    assert!(groups[2].starts_with('4'), "{uid}");
    assert!(groups[3].starts_with(['8', '9', 'a', 'b']), "{uid}");
}
