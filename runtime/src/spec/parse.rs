//! YAML/JSON text → [`k8s_openapi::api::core::v1::Pod`] → [`PodSpec`].
//!
//! The pipeline:
//!
//! 1. the text is parsed into a [`serde_json::Value`] (the YAML parser reads JSON too), its
//!    `kind` and `apiVersion` are checked, and `null` mapping values are dropped (they mean
//!    "unset", as in `creationTimestamp: null` from `kubectl run --dry-run=client -o yaml`);
//! 2. the value is deserialized into a typed `Pod`, type errors naming their field path;
//! 3. keys the typed `Pod` dropped (k8s-openapi ignores unknown keys) are `unknown field` errors;
//! 4. every field of the typed `Pod` is either converted, ignored (logged at debug: only the
//!    scheduler or the API server acts on it, or it cannot matter to a WebAssembly guest), or
//!    rejected as `not supported by wasmpod`. Structs are destructured without `..`, so a field
//!    added to k8s-openapi is a compile error here until someone decides its fate.
//!
//! Steps 1 to 3 live in [`document`]; step 4 starts at [`pod`], with one module for each part
//! of the pod ([`metadata`], [`container`], [`volume`], ...). [`field_path`] names fields in
//! errors and [`policy`] holds the ignore/reject helpers every converter shares.

mod container;
mod document;
mod env;
mod field_path;
mod lifecycle;
mod metadata;
mod mount;
mod names;
mod pod;
mod policy;
mod ports;
mod resources;
mod security;
mod settings;
mod volume;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::path::Path;

use super::{PodSpec, SpecError};

/// Parses a pod manifest file; relative image paths are resolved against the file's directory.
///
/// A file that cannot be read is an error with an empty path
/// (`read pod.yaml: No such file or directory`).
pub fn parse_pod_file(path: &Path) -> Result<PodSpec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(
            "",
            format!("read {}: {}", path.display(), io_error_message(&e)),
        )
    })?;
    parse_pod(&text, path.parent().unwrap_or(Path::new("")))
}

/// Parses and validates a `v1` Pod manifest written in YAML or JSON.
///
/// `base_dir` is the manifest's directory: relative `image` paths are resolved against it. The
/// images are not opened here; the runtime reports missing modules when it loads them.
pub fn parse_pod(text: &str, base_dir: &Path) -> Result<PodSpec, SpecError> {
    let mut doc = document::parse_document(text)?;
    document::check_type_meta(&doc)?;
    document::strip_null_values(&mut doc);
    let pod = document::deserialize_pod(&doc)?;
    document::check_unknown_fields(&doc, &pod)?;
    pod::convert_pod(pod, base_dir)
}

/// An I/O error's message without the ` (os error N)` suffix.
fn io_error_message(e: &std::io::Error) -> String {
    let message = e.to_string();
    match message.find(" (os error ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}
