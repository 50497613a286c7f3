//! Text → [`Value`] → typed [`core::Pod`]: syntax, `kind`/`apiVersion`, `null`s, field types,
//! and the round trip that finds keys the typed pod does not know.

use k8s_openapi::api::core::v1 as core;
use serde_json::{Map, Value};

use super::field_path::FieldPath;
use crate::spec::SpecError;

/// Parses YAML (or JSON) into a value; syntax errors become one-line messages with a location.
///
/// The text is read twice: as a YAML value first, which rejects duplicate keys (as
/// `kubectl --validate=strict` does) where a JSON value would silently keep the last one.
pub(super) fn parse_document(text: &str) -> Result<Value, SpecError> {
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .and_then(|_| serde_yaml::from_str::<Value>(text))
        .map_err(|e| SpecError::new("", yaml_error_message(&e)))
}

/// `invalid YAML at line L column C: <what>`, on one line.
fn yaml_error_message(e: &serde_yaml::Error) -> String {
    let message = one_line(&e.to_string());
    match e.location() {
        Some(at) => {
            let location = format!("line {} column {}", at.line(), at.column());
            let message = message.replacen(&format!(" at {location}"), "", 1);
            format!("invalid YAML at {location}: {message}")
        }
        None => format!("invalid YAML: {message}"),
    }
}

/// Collapses a possibly multi-line message into one line without a trailing period.
fn one_line(message: &str) -> String {
    let joined = message.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches('.').to_string()
}

/// Checks that the document is a mapping with `kind: Pod` and `apiVersion: v1`.
pub(super) fn check_type_meta(doc: &Value) -> Result<(), SpecError> {
    let Value::Object(map) = doc else {
        return Err(SpecError::new(
            "",
            format!(
                "expected a pod manifest (a mapping), got {}",
                value_kind(doc)
            ),
        ));
    };
    check_type_field(map, "kind", "Pod", "unknown kind")?;
    check_type_field(map, "apiVersion", "v1", "unsupported value")
}

/// The top-level `field` must be the string `want`; anything else is
/// `<field>: <wrong> <value>: wasmpod runs v1 Pod manifests`.
fn check_type_field(
    map: &Map<String, Value>,
    field: &str,
    want: &str,
    wrong: &str,
) -> Result<(), SpecError> {
    let p = FieldPath::root(field);
    match map.get(field) {
        Some(Value::String(value)) if value == want => Ok(()),
        None | Some(Value::Null) => Err(p.required()),
        Some(other) => Err(p.error(format!(
            "{wrong} {}: wasmpod runs v1 Pod manifests",
            display_scalar(other)
        ))),
    }
}

/// `"text"` for strings, the JSON text otherwise.
fn display_scalar(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The YAML name of a value's type, for messages.
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "an empty document",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Removes `null` values from every mapping: Kubernetes reads them as unset.
pub(super) fn strip_null_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null_values),
        _ => {}
    }
}

/// Deserializes the typed pod; errors name the offending field.
pub(super) fn deserialize_pod(doc: &Value) -> Result<core::Pod, SpecError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = serde_path(e.path());
        let message = one_line(&e.inner().to_string());
        match missing_field(&message) {
            Some(field) => path.field(field).required(),
            None => path.error(message),
        }
    })
}

/// The field name in serde's ``missing field `name` `` message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// A serde path as a kubectl-style field path.
fn serde_path(path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    path.iter()
        .fold(FieldPath::default(), |acc, segment| match segment {
            Segment::Seq { index } => acc.index(*index),
            Segment::Map { key } => acc.key(key),
            Segment::Enum { variant } => acc.key(variant),
            Segment::Unknown => acc,
        })
}

/// Rejects keys of `doc` that the typed pod dropped while deserializing.
pub(super) fn check_unknown_fields(doc: &Value, pod: &core::Pod) -> Result<(), SpecError> {
    let known = serde_json::to_value(pod)
        .map_err(|e| SpecError::new("", format!("re-serialize pod: {e}")))?;
    match find_unknown_field(doc, &known, FieldPath::default()) {
        Some(path) => Err(path.error("unknown field")),
        None => Ok(()),
    }
}

/// The first key present in `input` but absent in `known`, walking both side by side.
///
/// Only key presence is compared: values may legitimately differ after the round trip.
fn find_unknown_field(input: &Value, known: &Value, path: FieldPath) -> Option<FieldPath> {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => input
            .iter()
            .filter(|(_, v)| !v.is_null())
            .find_map(|(key, value)| {
                let child = path.key(key);
                match known.get(key) {
                    Some(known_value) => find_unknown_field(value, known_value, child),
                    None => Some(child),
                }
            }),
        (Value::Array(input), Value::Array(known)) => {
            input
                .iter()
                .zip(known)
                .enumerate()
                .find_map(|(i, (value, known_value))| {
                    find_unknown_field(value, known_value, path.index(i))
                })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::SpecError;
    use crate::spec::parse::test_support::{
        assert_errors, container, err, ok, parse, pod, pod_with_container, strings,
    };

    #[test]
    fn yaml_syntax_error_is_one_line_with_location() {
        let e = parse("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [demo\n");
        let e = e.err().unwrap_or_else(|| SpecError::new("x", "x"));
        assert_eq!(e.path, "");
        assert!(e.message.starts_with("invalid YAML at line "), "{e}");
        assert!(e.message.contains(" column "), "{e}");
        assert!(!e.message.contains('\n'));
        let e = err("a: b: c\n");
        assert!(e.starts_with(": invalid YAML at line 1 column 5: "), "{e}");
    }

    #[test]
    fn document_must_be_a_mapping() {
        assert_eq!(
            err("- a\n- b\n"),
            ": expected a pod manifest (a mapping), got a list"
        );
        assert_eq!(
            err(""),
            ": expected a pod manifest (a mapping), got an empty document"
        );
    }

    #[test]
    fn kind_and_api_version() {
        assert_errors(&[
            (
                "apiVersion: apps/v1\nkind: Deployment\n",
                "kind: unknown kind \"Deployment\": wasmpod runs v1 Pod manifests",
            ),
            ("apiVersion: v1\n", "kind: required value"),
            ("kind: Pod\n", "apiVersion: required value"),
            (
                "apiVersion: v2\nkind: Pod\n",
                "apiVersion: unsupported value \"v2\": wasmpod runs v1 Pod manifests",
            ),
        ]);
    }

    #[test]
    fn type_errors_name_the_field() {
        let labels = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo\n  labels:\n    app.kubernetes.io/version: 1\n";
        assert_errors(&[
            (
                pod_with_container("ports: [{containerPort: http}]"),
                "spec.containers[0].ports[0].containerPort: invalid type: string \"http\", expected i32",
            ),
            (
                labels.to_string(),
                "metadata.labels[app.kubernetes.io/version]: invalid type: integer `1`, expected a string",
            ),
            (
                pod("containers: {name: a}"),
                "spec.containers: invalid type: map, expected a sequence",
            ),
        ]);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let one = "containers: [{name: a, image: a.wasm}]";
        assert_errors(&[
            (
                pod_with_container("imagee: other.wasm"),
                "spec.containers[0].imagee: unknown field",
            ),
            (format!("{}extra: 1\n", pod(one)), "extra: unknown field"),
            (
                pod(&format!(
                    "{one}\nvolumes: [{{name: v, emptyDir: {{medum: Memory}}}}]"
                )),
                "spec.volumes[0].emptyDir.medum: unknown field",
            ),
            (
                format!("{}status: {{phase: Running, bogus: 1}}\n", pod(one)),
                "status.bogus: unknown field",
            ),
            (
                pod_with_container("securityContext: {Privileged: true}"),
                "spec.containers[0].securityContext.Privileged: unknown field",
            ),
        ]);
    }

    #[test]
    fn null_values_count_as_unset() {
        let spec = ok(&pod_with_container("args: null\nenv: null\ntypo: null"));
        assert_eq!(container(&spec).argv, strings(&["web.wasm"]));
    }
}
