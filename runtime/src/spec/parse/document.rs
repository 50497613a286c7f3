//! Text → [`Value`] → typed [`core::Pod`]: syntax, `kind`/`apiVersion`, `null`s, field types,
//! and the round trip that finds keys the typed pod does not know.

use serde_json::Value;

use super::field_path::FieldPath;
use crate::spec::SpecError;

/// What kind of object a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `kind: Pod`.
    Pod,
    /// `kind: ConfigMap`.
    ConfigMap,
    /// `kind: Secret`.
    Secret,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }
}

/// One object of a manifest file.
#[derive(Debug)]
pub(super) struct Object {
    /// Its kind.
    pub(super) kind: Kind,
    /// Its value, `null`s removed.
    pub(super) value: Value,
    /// How errors name it in a file of several: `document 2 (ConfigMap "settings")`.
    pub(super) label: String,
}

/// Every object of `text`: YAML documents separated by `---` (or one JSON document), empty
/// documents skipped, the items of a `kind: List` in its place, as kubectl reads a file.
///
/// The text is read twice: as YAML values first, which rejects duplicate keys (as
/// `kubectl --validate=strict` does) where a JSON value would silently keep the last one.
/// Syntax errors become one-line messages with a location.
pub(super) fn parse_objects(text: &str) -> Result<Vec<Object>, SpecError> {
    use serde::Deserialize as _;
    let syntax = |e: serde_yaml::Error| SpecError::new("", yaml_error_message(&e));
    let mut count = 0;
    for document in serde_yaml::Deserializer::from_str(text) {
        if !serde_yaml::Value::deserialize(document)
            .map_err(syntax)?
            .is_null()
        {
            count += 1;
        }
    }
    // Errors name their document only in a file of several.
    let named = |label: &str| {
        let label = (count > 1).then(|| label.to_owned());
        move |e: SpecError| match label {
            Some(label) => e.in_document(label),
            None => e,
        }
    };
    let mut objects = Vec::new();
    let documents = serde_yaml::Deserializer::from_str(text)
        .map(Value::deserialize)
        .filter(|value| !matches!(value, Ok(Value::Null)));
    for (n, document) in documents.enumerate() {
        let label = format!("document {}", n + 1);
        let mut value = document.map_err(syntax)?;
        strip_null_values(&mut value);
        match check_type_meta(&value).map_err(named(&label))? {
            Some(kind) => objects.push(Object::new(kind, value, label)),
            None => {
                let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) else {
                    return Err(named(&label)(FieldPath::root("items").required()));
                };
                for (i, item) in items.into_iter().enumerate() {
                    let label = format!("{label} items[{i}]");
                    match check_type_meta(&item).map_err(|e| e.in_document(&label))? {
                        Some(kind) => objects.push(Object::new(kind, item, label)),
                        None => {
                            return Err(FieldPath::root("kind")
                                .error("a List cannot hold a List")
                                .in_document(label));
                        }
                    }
                }
            }
        }
    }
    Ok(objects)
}

impl Object {
    fn new(kind: Kind, value: Value, label: String) -> Self {
        let label = match value.pointer("/metadata/name").and_then(Value::as_str) {
            Some(name) => format!("{label} ({} {name:?})", kind.name()),
            None => format!("{label} ({})", kind.name()),
        };
        Object { kind, value, label }
    }
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

/// What wasmpod runs, for messages.
const RUNS: &str = "wasmpod runs v1 Pods, ConfigMaps and Secrets (and Lists of them)";

/// Checks that the document is a mapping with a `kind` wasmpod reads and `apiVersion: v1`;
/// `None` for a `kind: List`.
fn check_type_meta(doc: &Value) -> Result<Option<Kind>, SpecError> {
    let Value::Object(map) = doc else {
        return Err(SpecError::new(
            "",
            format!(
                "expected a Kubernetes object (a mapping), got {}",
                value_kind(doc)
            ),
        ));
    };
    let p = FieldPath::root("kind");
    let kind = match map.get("kind") {
        Some(Value::String(kind)) => match kind.as_str() {
            "Pod" => Some(Kind::Pod),
            "ConfigMap" => Some(Kind::ConfigMap),
            "Secret" => Some(Kind::Secret),
            "List" => None,
            other => return Err(p.error(format!("unknown kind {other:?}: {RUNS}"))),
        },
        None | Some(Value::Null) => return Err(p.required()),
        Some(other) => {
            return Err(p.error(format!("unknown kind {}: {RUNS}", display_scalar(other))));
        }
    };
    let p = FieldPath::root("apiVersion");
    match map.get("apiVersion") {
        Some(Value::String(version)) if version == "v1" => Ok(kind),
        None | Some(Value::Null) => Err(p.required()),
        Some(other) => Err(p.error(format!(
            "unsupported value {}: {RUNS}",
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

/// File modes written as YAML 1.1 octal (`defaultMode: 0400`, an item's `mode: 0600`), as
/// manifests write them and kubectl's YAML 1.1 parser reads them: the YAML 1.2 parser here
/// reads such a scalar as the string `"0400"`; it becomes the number 256. Only the volumes'
/// mode fields are touched: elsewhere a string is a string.
pub(super) fn octal_modes(pod: &mut Value) {
    let Some(Value::Array(volumes)) = pod.pointer_mut("/spec/volumes") else {
        return;
    };
    for volume in volumes {
        for source in ["configMap", "secret", "projected", "downwardAPI"] {
            let Some(source) = volume.get_mut(source) else {
                continue;
            };
            octal(source.get_mut("defaultMode"));
            if let Some(Value::Array(items)) = source.get_mut("items") {
                for item in items {
                    octal(item.get_mut("mode"));
                }
            }
        }
    }
}

/// `"0400"` (or `"0o400"`) → `256`; anything else is left as it is.
fn octal(value: Option<&mut Value>) {
    let Some(value) = value else { return };
    let Some(text) = value.as_str() else { return };
    let digits = text
        .strip_prefix("0o")
        .or_else(|| text.strip_prefix('0'))
        .filter(|d| !d.is_empty());
    if let Some(mode) = digits.and_then(|d| i64::from_str_radix(d, 8).ok()) {
        *value = Value::from(mode);
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

/// Deserializes a typed object (a Pod, a ConfigMap...); errors name the offending field.
pub(super) fn deserialize<T: serde::de::DeserializeOwned>(doc: &Value) -> Result<T, SpecError> {
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

/// Rejects keys of `doc` that the typed object dropped while deserializing.
pub(super) fn check_unknown_fields<T: serde::Serialize>(
    doc: &Value,
    object: &T,
) -> Result<(), SpecError> {
    let known = serde_json::to_value(object)
        .map_err(|e| SpecError::new("", format!("re-serialize: {e}")))?;
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
        assert!(e.starts_with("invalid YAML at line 1 column 5: "), "{e}");
    }

    #[test]
    fn document_must_be_a_mapping() {
        assert_eq!(
            err("- a\n- b\n"),
            "expected a Kubernetes object (a mapping), got a list"
        );
        assert_eq!(err(""), "expected one Pod in the manifest, found 0");
    }

    #[test]
    fn kind_and_api_version() {
        assert_errors(&[
            (
                "apiVersion: apps/v1\nkind: Deployment\n",
                "kind: unknown kind \"Deployment\": wasmpod runs v1 Pods, ConfigMaps and Secrets \
                 (and Lists of them)",
            ),
            ("apiVersion: v1\n", "kind: required value"),
            ("kind: Pod\n", "apiVersion: required value"),
            (
                "apiVersion: v2\nkind: Pod\n",
                "apiVersion: unsupported value \"v2\": wasmpod runs v1 Pods, ConfigMaps and \
                 Secrets (and Lists of them)",
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
