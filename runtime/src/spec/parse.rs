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
//!
//! A file may hold several documents (`---`) and `kind: List`s: ConfigMaps and Secrets
//! ([`objects`]) are read first, then every Pod, whose `env[].valueFrom` and `envFrom` read
//! them as kubelet reads them from the API server. An error in a file of several documents
//! names its document: `document 2 (ConfigMap "settings"): data[a b]: invalid value ...`.

mod container;
mod document;
mod env;
mod field_path;
mod handler;
mod lifecycle;
mod metadata;
mod mount;
mod names;
mod objects;
mod pod;
mod policy;
mod ports;
mod probe;
mod resources;
mod security;
mod settings;
mod volume;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::path::Path;

use document::Kind;

use super::{PodSpec, SpecError};

/// What a manifest file holds for wasmpod: its Pods, with the file's ConfigMaps and Secrets
/// read into them.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The Pods, in file order.
    pub pods: Vec<PodSpec>,
}

/// Parses a manifest file; relative image paths are resolved against the file's directory.
///
/// A file that cannot be read is an error with an empty path
/// (`read pod.yaml: No such file or directory`).
pub fn parse_manifest_file(path: &Path) -> Result<Manifest, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(
            "",
            format!("read {}: {}", path.display(), io_error_message(&e)),
        )
    })?;
    parse_manifest(&text, path.parent().unwrap_or(Path::new("")))
}

/// Parses and validates a manifest written in YAML or JSON: one or more documents (`---`),
/// each a `v1` Pod, ConfigMap or Secret, or a `kind: List` of them.
///
/// `base_dir` is the manifest's directory: relative `image` paths are resolved against it. The
/// images are not opened here; the runtime reports missing modules when it loads them.
pub fn parse_manifest(text: &str, base_dir: &Path) -> Result<Manifest, SpecError> {
    let parsed = document::parse_objects(text)?;
    let several = parsed.len() > 1;
    let named = |label: &String| {
        let label = label.clone();
        move |e: SpecError| {
            if several { e.in_document(label) } else { e }
        }
    };
    let mut objects = objects::Objects::default();
    for object in &parsed {
        let kind = match object.kind {
            Kind::ConfigMap => objects::ObjectKind::ConfigMap,
            Kind::Secret => objects::ObjectKind::Secret,
            Kind::Pod => continue,
        };
        objects
            .add(kind, &object.value)
            .map_err(named(&object.label))?;
    }
    let mut pods: Vec<PodSpec> = Vec::new();
    for object in parsed.iter().filter(|o| o.kind == Kind::Pod) {
        let pod = convert(&object.value, base_dir, &objects).map_err(named(&object.label))?;
        if pods
            .iter()
            .any(|p| p.namespace == pod.namespace && p.name == pod.name)
        {
            let name = &pod.name;
            return Err(named(&object.label)(SpecError::new(
                "metadata.name",
                format!("duplicate pod {name:?}"),
            )));
        }
        pods.push(pod);
    }
    Ok(Manifest { pods })
}

/// Parses a pod manifest file: a file holding exactly one Pod (and the ConfigMaps and Secrets
/// it reads); relative image paths are resolved against the file's directory.
pub fn parse_pod_file(path: &Path) -> Result<PodSpec, SpecError> {
    one_pod(parse_manifest_file(path)?)
}

/// [`parse_manifest`] of a manifest holding exactly one Pod.
pub fn parse_pod(text: &str, base_dir: &Path) -> Result<PodSpec, SpecError> {
    one_pod(parse_manifest(text, base_dir)?)
}

fn one_pod(manifest: Manifest) -> Result<PodSpec, SpecError> {
    let count = manifest.pods.len();
    let mut pods = manifest.pods.into_iter();
    match (pods.next(), pods.next()) {
        (Some(pod), None) => Ok(pod),
        _ => Err(SpecError::new(
            "",
            format!("expected one Pod in the manifest, found {count}"),
        )),
    }
}

/// One Pod document → [`PodSpec`].
fn convert(
    doc: &serde_json::Value,
    base_dir: &Path,
    objects: &objects::Objects,
) -> Result<PodSpec, SpecError> {
    let mut doc = doc.clone();
    document::octal_modes(&mut doc);
    let pod: k8s_openapi::api::core::v1::Pod = document::deserialize(&doc)?;
    document::check_unknown_fields(&doc, &pod)?;
    pod::convert_pod(pod, base_dir, objects)
}

/// An I/O error's message without the ` (os error N)` suffix.
fn io_error_message(e: &std::io::Error) -> String {
    let message = e.to_string();
    match message.find(" (os error ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}
