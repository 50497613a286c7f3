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

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::quantity::{parse_cpu_millis, parse_memory_bytes};
use super::{
    ContainerSpec, HostPathType, MountSpec, PodSpec, Resources, RestartPolicy, SpecError,
    VolumeSource, VolumeSpec,
};

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
    let mut doc = parse_document(text)?;
    check_type_meta(&doc)?;
    strip_null_values(&mut doc);
    let pod = deserialize_pod(&doc)?;
    check_unknown_fields(&doc, &pod)?;
    convert_pod(pod, base_dir)
}

// ---------------------------------------------------------------------------------------------
// Field paths and policy helpers
// ---------------------------------------------------------------------------------------------

/// A kubectl-style field path: `spec.containers[0].resources.limits[nvidia.com/gpu]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FieldPath(String);

impl FieldPath {
    /// A top-level field.
    fn root(name: &str) -> FieldPath {
        FieldPath(name.to_string())
    }

    /// The child field `name` (a JSON field name, or a dotted chain of them).
    fn field(&self, name: &str) -> FieldPath {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The element `index` of a list.
    fn index(&self, index: usize) -> FieldPath {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The entry `key` of a map: `.key` when it reads as a field name, else `[key]`.
    fn key(&self, key: &str) -> FieldPath {
        let plain = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            self.field(key)
        } else {
            FieldPath(format!("{}[{key}]", self.0))
        }
    }

    /// An error at this path.
    fn error(&self, message: impl Into<String>) -> SpecError {
        SpecError::new(self.0.clone(), message)
    }

    /// `<path>: not supported by wasmpod`.
    fn unsupported(&self) -> SpecError {
        self.error("not supported by wasmpod")
    }

    /// `<path>: required value`.
    fn required(&self) -> SpecError {
        self.error("required value")
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ignored: only the scheduler or the API server acts on the field.
const SCHEDULER: &str = "ignored: only the scheduler or API server acts on it";
/// Ignored: WebAssembly guests have no uids, gids or capabilities.
const NO_USERS: &str = "ignored: webassembly guests have no users, groups or capabilities";
/// Ignored: the WebAssembly sandbox already confines the guest more than this would.
const SANDBOXED: &str = "ignored: the webassembly sandbox already confines the guest";
/// Ignored: images are local `.wasm` files and the kubelet's bookkeeping does not apply.
const NOT_APPLICABLE: &str = "ignored: does not apply to webassembly modules";

/// Logs, at debug, each of `fields` (children of `base`) that is set.
fn ignore_fields(base: &FieldPath, reason: &str, fields: &[(&str, bool)]) {
    for &(name, set) in fields {
        if set {
            tracing::debug!(field = %base.field(name), "{reason}");
        }
    }
}

/// The first of `fields` (children of `base`) that is set, as a `not supported` error.
fn reject_fields(base: &FieldPath, fields: &[(&str, bool)]) -> Result<(), SpecError> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(base.field(name).unsupported()),
        None => Ok(()),
    }
}

/// Whether a list field holds at least one element.
fn nonempty<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

/// Whether a map field holds at least one entry.
fn nonempty_map<K, V>(map: &Option<BTreeMap<K, V>>) -> bool {
    map.as_ref().is_some_and(|m| !m.is_empty())
}

/// Whether a string field is set to something other than `""`.
fn nonempty_str(s: &Option<String>) -> bool {
    s.as_ref().is_some_and(|s| !s.is_empty())
}

/// `Some(s)` unless `s` is missing or `""` (Kubernetes treats both as unset).
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Whether a boolean field is explicitly `true`.
fn is_true(b: Option<bool>) -> bool {
    b == Some(true)
}

/// Whether a string field is set to something other than its harmless `default`.
fn differs_from(s: &Option<String>, default: &str) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty() && s != default)
}

/// Converts each element of the list at `p` with `convert`, which gets the element's path.
fn convert_list<T, U>(
    items: Vec<T>,
    p: &FieldPath,
    mut convert: impl FnMut(T, &FieldPath) -> Result<U, SpecError>,
) -> Result<Vec<U>, SpecError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item, &p.index(i)))
        .collect()
}

/// Records `value` in `seen`; a value seen before is `<p>: duplicate <what> "<value>"`.
fn check_unique(
    seen: &mut HashSet<String>,
    value: &str,
    p: &FieldPath,
    what: &str,
) -> Result<(), SpecError> {
    if seen.insert(value.to_string()) {
        Ok(())
    } else {
        Err(p.error(format!("duplicate {what} {value:?}")))
    }
}

// ---------------------------------------------------------------------------------------------
// Text → Value → typed Pod
// ---------------------------------------------------------------------------------------------

/// Parses YAML (or JSON) into a value; syntax errors become one-line messages with a location.
///
/// The text is read twice: as a YAML value first, which rejects duplicate keys (as
/// `kubectl --validate=strict` does) where a JSON value would silently keep the last one.
fn parse_document(text: &str) -> Result<Value, SpecError> {
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

/// An I/O error's message without the ` (os error N)` suffix.
fn io_error_message(e: &std::io::Error) -> String {
    let message = e.to_string();
    match message.find(" (os error ") {
        Some(at) => message[..at].to_string(),
        None => message,
    }
}

/// Checks that the document is a mapping with `kind: Pod` and `apiVersion: v1`.
fn check_type_meta(doc: &Value) -> Result<(), SpecError> {
    let Value::Object(map) = doc else {
        return Err(SpecError::new(
            "",
            format!(
                "expected a pod manifest (a mapping), got {}",
                value_kind(doc)
            ),
        ));
    };
    match map.get("kind") {
        Some(Value::String(kind)) if kind == "Pod" => {}
        None | Some(Value::Null) => return Err(FieldPath::root("kind").required()),
        Some(other) => {
            return Err(FieldPath::root("kind").error(format!(
                "unknown kind {}: wasmpod runs v1 Pod manifests",
                display_scalar(other)
            )));
        }
    }
    match map.get("apiVersion") {
        Some(Value::String(version)) if version == "v1" => Ok(()),
        None | Some(Value::Null) => Err(FieldPath::root("apiVersion").required()),
        Some(other) => Err(FieldPath::root("apiVersion").error(format!(
            "unsupported value {}: wasmpod runs v1 Pod manifests",
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
fn strip_null_values(value: &mut Value) {
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
fn deserialize_pod(doc: &Value) -> Result<core::Pod, SpecError> {
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
fn check_unknown_fields(doc: &Value, pod: &core::Pod) -> Result<(), SpecError> {
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

// ---------------------------------------------------------------------------------------------
// Typed Pod → PodSpec
// ---------------------------------------------------------------------------------------------

/// The converted `metadata`.
#[derive(Debug)]
struct Meta {
    name: String,
    namespace: String,
    uid: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// What converting a container needs to know about its pod.
#[derive(Debug)]
struct PodContext<'a> {
    meta: &'a Meta,
    base_dir: &'a Path,
    volumes: HashSet<&'a str>,
}

/// Whether a container is an init container or an app container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Init,
    App,
}

/// Converts the whole pod.
fn convert_pod(pod: core::Pod, base_dir: &Path) -> Result<PodSpec, SpecError> {
    let core::Pod {
        metadata,
        spec,
        status,
    } = pod;
    ignore_fields(
        &FieldPath::default(),
        SCHEDULER,
        &[("status", status.is_some())],
    );
    let meta = convert_metadata(metadata)?;
    let spec = spec.ok_or_else(|| FieldPath::root("spec").required())?;
    convert_spec(spec, meta, base_dir)
}

/// Converts `metadata`, generating the name (from `generateName`) and uid when missing.
fn convert_metadata(metadata: ObjectMeta) -> Result<Meta, SpecError> {
    let ObjectMeta {
        annotations,
        creation_timestamp,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation,
        labels,
        managed_fields,
        name,
        namespace,
        owner_references,
        resource_version,
        self_link,
        uid,
    } = metadata;
    let p = FieldPath::root("metadata");
    ignore_fields(
        &p,
        SCHEDULER,
        &[
            ("creationTimestamp", creation_timestamp.is_some()),
            (
                "deletionGracePeriodSeconds",
                deletion_grace_period_seconds.is_some(),
            ),
            ("deletionTimestamp", deletion_timestamp.is_some()),
            ("finalizers", nonempty(&finalizers)),
            ("generation", generation.is_some()),
            ("managedFields", nonempty(&managed_fields)),
            ("ownerReferences", nonempty(&owner_references)),
            ("resourceVersion", resource_version.is_some()),
            ("selfLink", self_link.is_some()),
        ],
    );
    let name = match (non_empty(name), non_empty(generate_name)) {
        (Some(name), _) => name,
        (None, Some(prefix)) => format!("{prefix}{}", random_suffix()),
        (None, None) => return Err(p.field("name").required()),
    };
    check_dns_subdomain(&name, &p.field("name"))?;
    let namespace = non_empty(namespace).unwrap_or_else(|| "default".to_string());
    check_dns_label(&namespace, &p.field("namespace"))?;
    Ok(Meta {
        name,
        namespace,
        uid: non_empty(uid).unwrap_or_else(generate_uid),
        labels: labels.unwrap_or_default(),
        annotations: annotations.unwrap_or_default(),
    })
}

/// Converts `spec` with the already converted metadata.
fn convert_spec(spec: core::PodSpec, meta: Meta, base_dir: &Path) -> Result<PodSpec, SpecError> {
    let core::PodSpec {
        active_deadline_seconds,
        affinity,
        automount_service_account_token,
        containers,
        dns_config,
        dns_policy,
        enable_service_links,
        ephemeral_containers,
        eviction_responders,
        host_aliases,
        host_ipc,
        host_network,
        host_pid,
        host_users,
        hostname,
        hostname_override,
        image_pull_secrets,
        init_containers,
        node_name,
        node_selector,
        os,
        overhead,
        preemption_policy,
        priority,
        priority_class_name,
        readiness_gates,
        resource_claims,
        resources,
        restart_policy,
        runtime_class_name,
        scheduler_name,
        scheduling_gates,
        scheduling_group,
        security_context,
        service_account,
        service_account_name,
        set_hostname_as_fqdn,
        share_process_namespace,
        subdomain,
        termination_grace_period_seconds,
        tolerations,
        topology_spread_constraints,
        volumes,
    } = spec;
    let p = FieldPath::root("spec");
    reject_fields(
        &p,
        &[
            ("hostNetwork", is_true(host_network)),
            ("hostPID", is_true(host_pid)),
            ("hostIPC", is_true(host_ipc)),
            ("shareProcessNamespace", is_true(share_process_namespace)),
            ("ephemeralContainers", nonempty(&ephemeral_containers)),
            ("hostAliases", nonempty(&host_aliases)),
            ("resourceClaims", nonempty(&resource_claims)),
            (
                "resources",
                resources.as_ref().is_some_and(requirements_set),
            ),
        ],
    )?;
    ignore_fields(
        &p,
        SCHEDULER,
        &[
            ("affinity", affinity.is_some()),
            ("evictionResponders", nonempty(&eviction_responders)),
            ("imagePullSecrets", nonempty(&image_pull_secrets)),
            ("nodeName", node_name.is_some()),
            ("nodeSelector", nonempty_map(&node_selector)),
            ("overhead", nonempty_map(&overhead)),
            ("preemptionPolicy", preemption_policy.is_some()),
            ("priority", priority.is_some()),
            ("priorityClassName", priority_class_name.is_some()),
            ("readinessGates", nonempty(&readiness_gates)),
            ("runtimeClassName", runtime_class_name.is_some()),
            ("schedulerName", scheduler_name.is_some()),
            ("schedulingGates", nonempty(&scheduling_gates)),
            ("schedulingGroup", scheduling_group.is_some()),
            ("serviceAccount", service_account.is_some()),
            ("serviceAccountName", service_account_name.is_some()),
            ("tolerations", nonempty(&tolerations)),
            (
                "topologySpreadConstraints",
                nonempty(&topology_spread_constraints),
            ),
        ],
    );
    ignore_fields(
        &p,
        NOT_APPLICABLE,
        &[
            (
                "automountServiceAccountToken",
                automount_service_account_token.is_some(),
            ),
            ("dnsConfig", dns_config.is_some()),
            ("dnsPolicy", dns_policy.is_some()),
            ("enableServiceLinks", enable_service_links.is_some()),
            ("hostUsers", host_users.is_some()),
            ("setHostnameAsFQDN", set_hostname_as_fqdn.is_some()),
            ("subdomain", subdomain.is_some()),
        ],
    );
    if let Some(os) = os {
        check_os(os, &p.field("os"))?;
    }
    if let Some(security_context) = security_context {
        check_pod_security_context(security_context, &p.field("securityContext"))?;
    }

    let volumes = convert_volumes(volumes.unwrap_or_default(), &p.field("volumes"))?;
    let context = PodContext {
        meta: &meta,
        base_dir,
        volumes: volumes.iter().map(|v| v.name.as_str()).collect(),
    };
    let mut names = HashSet::new();
    let init_containers = convert_containers(
        init_containers.unwrap_or_default(),
        &p.field("initContainers"),
        ContainerKind::Init,
        &context,
        &mut names,
    )?;
    if containers.is_empty() {
        return Err(p
            .field("containers")
            .error("at least one container is required"));
    }
    let containers = convert_containers(
        containers,
        &p.field("containers"),
        ContainerKind::App,
        &context,
        &mut names,
    )?;

    let hostname = pod_hostname(hostname, hostname_override, &meta.name, &p)?;
    Ok(PodSpec {
        restart_policy: convert_restart_policy(restart_policy, &p.field("restartPolicy"))?,
        termination_grace_period: grace_period(
            termination_grace_period_seconds,
            &p.field("terminationGracePeriodSeconds"),
        )?,
        active_deadline: active_deadline(
            active_deadline_seconds,
            &p.field("activeDeadlineSeconds"),
        )?,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        labels: meta.labels,
        annotations: meta.annotations,
        hostname,
        init_containers,
        containers,
        volumes,
    })
}

/// Whether a `resources` block asks for anything.
fn requirements_set(r: &core::ResourceRequirements) -> bool {
    nonempty(&r.claims) || nonempty_map(&r.limits) || nonempty_map(&r.requests)
}

/// `spec.os`: only `linux` (WASI guests see a POSIX-like system).
fn check_os(os: core::PodOS, p: &FieldPath) -> Result<(), SpecError> {
    let core::PodOS { name } = os;
    if name == "linux" {
        Ok(())
    } else {
        Err(p
            .field("name")
            .error(format!("{name:?} not supported by wasmpod")))
    }
}

/// Pod-level `securityContext`: identities are ignored, sysctls cannot be honoured.
fn check_pod_security_context(
    sc: core::PodSecurityContext,
    p: &FieldPath,
) -> Result<(), SpecError> {
    let core::PodSecurityContext {
        app_armor_profile,
        fs_group,
        fs_group_change_policy,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_change_policy,
        se_linux_options,
        seccomp_profile,
        supplemental_groups,
        supplemental_groups_policy,
        sysctls,
        windows_options,
    } = sc;
    reject_fields(p, &[("sysctls", nonempty(&sysctls))])?;
    ignore_fields(
        p,
        NO_USERS,
        &[
            ("fsGroup", fs_group.is_some()),
            ("fsGroupChangePolicy", fs_group_change_policy.is_some()),
            ("supplementalGroups", nonempty(&supplemental_groups)),
            (
                "supplementalGroupsPolicy",
                supplemental_groups_policy.is_some(),
            ),
        ],
    );
    ignore_fields(
        p,
        SANDBOXED,
        &[("seLinuxChangePolicy", se_linux_change_policy.is_some())],
    );
    // The rest are defaults for the containers' own settings: judge them the same way.
    check_security_context(
        core::SecurityContext {
            app_armor_profile,
            run_as_group,
            run_as_non_root,
            run_as_user,
            se_linux_options,
            seccomp_profile,
            windows_options,
            ..core::SecurityContext::default()
        },
        p,
    )
}

/// `spec.hostnameOverride`, else `spec.hostname`, else the pod name cut to a DNS label.
fn pod_hostname(
    hostname: Option<String>,
    hostname_override: Option<String>,
    pod_name: &str,
    p: &FieldPath,
) -> Result<String, SpecError> {
    if let Some(name) = non_empty(hostname_override) {
        check_dns_subdomain(&name, &p.field("hostnameOverride"))?;
        return Ok(name);
    }
    if let Some(name) = non_empty(hostname) {
        check_dns_label(&name, &p.field("hostname"))?;
        return Ok(name);
    }
    // As the kubelet does: a pod name longer than a DNS label is truncated.
    let truncated = pod_name.get(..MAX_LABEL).unwrap_or(pod_name);
    Ok(truncated.trim_end_matches(['-', '.']).to_string())
}

/// `spec.restartPolicy`, `Always` when unset.
fn convert_restart_policy(
    policy: Option<String>,
    p: &FieldPath,
) -> Result<RestartPolicy, SpecError> {
    match non_empty(policy).as_deref() {
        None | Some("Always") => Ok(RestartPolicy::Always),
        Some("OnFailure") => Ok(RestartPolicy::OnFailure),
        Some("Never") => Ok(RestartPolicy::Never),
        Some(other) => Err(p.error(format!(
            "unsupported value {other:?}: supported values are \"Always\", \"OnFailure\", \"Never\""
        ))),
    }
}

/// `spec.terminationGracePeriodSeconds`, 30 s when unset.
fn grace_period(seconds: Option<i64>, p: &FieldPath) -> Result<Duration, SpecError> {
    let seconds = seconds.unwrap_or(30);
    u64::try_from(seconds)
        .map(Duration::from_secs)
        .map_err(|_| p.error("must be greater than or equal to 0"))
}

/// `spec.activeDeadlineSeconds`: a positive number of seconds.
fn active_deadline(seconds: Option<i64>, p: &FieldPath) -> Result<Option<Duration>, SpecError> {
    seconds
        .map(|s| match u64::try_from(s) {
            Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
            _ => Err(p.error("must be greater than 0")),
        })
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Volumes
// ---------------------------------------------------------------------------------------------

/// Converts `spec.volumes`, rejecting duplicate names.
fn convert_volumes(
    volumes: Vec<core::Volume>,
    p: &FieldPath,
) -> Result<Vec<VolumeSpec>, SpecError> {
    let mut names = HashSet::new();
    convert_list(volumes, p, |volume, p| {
        let name_path = p.field("name");
        check_dns_label(&volume.name, &name_path)?;
        check_unique(&mut names, &volume.name, &name_path, "volume name")?;
        convert_volume(volume, p)
    })
}

/// Converts one volume: `emptyDir` or directory `hostPath`, nothing else.
fn convert_volume(volume: core::Volume, p: &FieldPath) -> Result<VolumeSpec, SpecError> {
    let core::Volume {
        aws_elastic_block_store,
        azure_disk,
        azure_file,
        cephfs,
        cinder,
        config_map,
        csi,
        downward_api,
        empty_dir,
        ephemeral,
        fc,
        flex_volume,
        flocker,
        gce_persistent_disk,
        git_repo,
        glusterfs,
        host_path,
        image,
        iscsi,
        name,
        nfs,
        persistent_volume_claim,
        photon_persistent_disk,
        portworx_volume,
        projected,
        quobyte,
        rbd,
        scale_io,
        secret,
        storageos,
        vsphere_volume,
    } = volume;
    reject_fields(
        p,
        &[
            ("awsElasticBlockStore", aws_elastic_block_store.is_some()),
            ("azureDisk", azure_disk.is_some()),
            ("azureFile", azure_file.is_some()),
            ("cephfs", cephfs.is_some()),
            ("cinder", cinder.is_some()),
            ("configMap", config_map.is_some()),
            ("csi", csi.is_some()),
            ("downwardAPI", downward_api.is_some()),
            ("ephemeral", ephemeral.is_some()),
            ("fc", fc.is_some()),
            ("flexVolume", flex_volume.is_some()),
            ("flocker", flocker.is_some()),
            ("gcePersistentDisk", gce_persistent_disk.is_some()),
            ("gitRepo", git_repo.is_some()),
            ("glusterfs", glusterfs.is_some()),
            ("image", image.is_some()),
            ("iscsi", iscsi.is_some()),
            ("nfs", nfs.is_some()),
            ("persistentVolumeClaim", persistent_volume_claim.is_some()),
            ("photonPersistentDisk", photon_persistent_disk.is_some()),
            ("portworxVolume", portworx_volume.is_some()),
            ("projected", projected.is_some()),
            ("quobyte", quobyte.is_some()),
            ("rbd", rbd.is_some()),
            ("scaleIO", scale_io.is_some()),
            ("secret", secret.is_some()),
            ("storageos", storageos.is_some()),
            ("vsphereVolume", vsphere_volume.is_some()),
        ],
    )?;
    let source = match (empty_dir, host_path) {
        (Some(empty_dir), None) => convert_empty_dir(empty_dir, &p.field("emptyDir"))?,
        (None, Some(host_path)) => convert_host_path(host_path, &p.field("hostPath"))?,
        (None, None) => return Err(p.error("must specify a volume source")),
        (Some(_), Some(_)) => return Err(p.error("may not specify more than one volume source")),
    };
    Ok(VolumeSpec { name, source })
}

/// `emptyDir`: on disk or (`medium: Memory`) on a tmpfs, optionally size-limited.
fn convert_empty_dir(
    empty_dir: core::EmptyDirVolumeSource,
    p: &FieldPath,
) -> Result<VolumeSource, SpecError> {
    let core::EmptyDirVolumeSource {
        medium,
        mode,
        size_limit,
    } = empty_dir;
    ignore_fields(p, NOT_APPLICABLE, &[("mode", mode.is_some())]);
    let memory = match non_empty(medium).as_deref() {
        None => false,
        Some("Memory") => true,
        Some(other) => {
            return Err(p.field("medium").error(format!(
                "unsupported value {other:?}: supported values are \"\", \"Memory\""
            )));
        }
    };
    let size_limit = size_limit
        .map(|q| parse_memory_bytes(&q.0).map_err(|e| p.field("sizeLimit").error(e)))
        .transpose()?;
    Ok(VolumeSource::EmptyDir { memory, size_limit })
}

/// `hostPath`: an absolute host directory.
fn convert_host_path(
    host_path: core::HostPathVolumeSource,
    p: &FieldPath,
) -> Result<VolumeSource, SpecError> {
    let core::HostPathVolumeSource { path, type_ } = host_path;
    if path.is_empty() {
        return Err(p.field("path").required());
    }
    if !Path::new(&path).is_absolute() {
        return Err(p.field("path").error("must be an absolute path"));
    }
    let kind = match non_empty(type_).as_deref() {
        None => HostPathType::Unset,
        Some("Directory") => HostPathType::Directory,
        Some("DirectoryOrCreate") => HostPathType::DirectoryOrCreate,
        Some(other @ ("File" | "FileOrCreate" | "Socket" | "CharDevice" | "BlockDevice")) => {
            return Err(p.field("type").error(format!(
                "{other:?} not supported by wasmpod: volumes are preopened directories"
            )));
        }
        Some(other) => {
            return Err(p.field("type").error(format!(
                "unsupported value {other:?}: supported values are \"\", \"Directory\", \"DirectoryOrCreate\""
            )));
        }
    };
    Ok(VolumeSource::HostPath {
        path: PathBuf::from(path),
        kind,
    })
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

/// Converts a container list; `names` collects container names across init and app lists.
fn convert_containers(
    containers: Vec<core::Container>,
    p: &FieldPath,
    kind: ContainerKind,
    context: &PodContext<'_>,
    names: &mut HashSet<String>,
) -> Result<Vec<ContainerSpec>, SpecError> {
    convert_list(containers, p, |container, p| {
        let name_path = p.field("name");
        check_dns_label(&container.name, &name_path)?;
        check_unique(names, &container.name, &name_path, "container name")?;
        convert_container(container, p, kind, context)
    })
}

/// Converts one (init or app) container.
fn convert_container(
    container: core::Container,
    p: &FieldPath,
    kind: ContainerKind,
    context: &PodContext<'_>,
) -> Result<ContainerSpec, SpecError> {
    let core::Container {
        args,
        command,
        env,
        env_from,
        image,
        image_pull_policy,
        lifecycle,
        liveness_probe,
        name,
        ports,
        readiness_probe,
        resize_policy,
        resources,
        restart_policy,
        restart_policy_rules,
        security_context,
        startup_probe,
        stdin,
        stdin_once,
        termination_message_path,
        termination_message_policy,
        tty,
        volume_devices,
        volume_mounts,
        working_dir,
    } = container;
    reject_fields(
        p,
        &[
            ("envFrom", nonempty(&env_from)),
            ("livenessProbe", liveness_probe.is_some()),
            ("readinessProbe", readiness_probe.is_some()),
            ("startupProbe", startup_probe.is_some()),
            ("restartPolicy", nonempty_str(&restart_policy)),
            ("restartPolicyRules", nonempty(&restart_policy_rules)),
            ("stdin", is_true(stdin)),
            ("stdinOnce", is_true(stdin_once)),
            ("tty", is_true(tty)),
            ("volumeDevices", nonempty(&volume_devices)),
        ],
    )?;
    ignore_fields(
        p,
        NOT_APPLICABLE,
        &[
            ("imagePullPolicy", image_pull_policy.is_some()),
            ("resizePolicy", nonempty(&resize_policy)),
            ("terminationMessagePath", termination_message_path.is_some()),
            (
                "terminationMessagePolicy",
                termination_message_policy.is_some(),
            ),
        ],
    );
    if let Some(security_context) = security_context {
        check_security_context(security_context, &p.field("securityContext"))?;
    }
    let (image, module) = resolve_image(image, &p.field("image"), context.base_dir)?;
    let env = convert_env(env.unwrap_or_default(), &p.field("env"), context.meta)?;
    let argv = compose_argv(
        &module,
        &command.unwrap_or_default(),
        &args.unwrap_or_default(),
        &env,
    );
    let working_dir = non_empty(working_dir)
        .map(|dir| absolute_guest_path(dir, &p.field("workingDir")))
        .transpose()?;
    Ok(ContainerSpec {
        mounts: convert_mounts(
            volume_mounts.unwrap_or_default(),
            &p.field("volumeMounts"),
            &context.volumes,
        )?,
        resources: convert_resources(resources, &p.field("resources"))?,
        ports: convert_ports(ports.unwrap_or_default(), &p.field("ports"))?,
        pre_stop: convert_lifecycle(lifecycle, &p.field("lifecycle"), kind)?,
        name,
        image,
        module,
        argv,
        env,
        working_dir,
    })
}

/// Container `securityContext`: harmless settings are accepted, privileges are not.
fn check_security_context(sc: core::SecurityContext, p: &FieldPath) -> Result<(), SpecError> {
    let core::SecurityContext {
        allow_privilege_escalation,
        app_armor_profile,
        capabilities,
        privileged,
        proc_mount,
        read_only_root_filesystem,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_options,
        seccomp_profile,
        windows_options,
    } = sc;
    let core::Capabilities { add, drop } = capabilities.unwrap_or_default();
    reject_fields(
        p,
        &[
            ("privileged", is_true(privileged)),
            (
                "allowPrivilegeEscalation",
                is_true(allow_privilege_escalation),
            ),
            ("capabilities.add", nonempty(&add)),
            ("procMount", differs_from(&proc_mount, "Default")),
        ],
    )?;
    ignore_fields(
        p,
        NO_USERS,
        &[
            ("capabilities.drop", nonempty(&drop)),
            ("runAsGroup", run_as_group.is_some()),
            ("runAsNonRoot", run_as_non_root.is_some()),
            ("runAsUser", run_as_user.is_some()),
        ],
    );
    ignore_fields(
        p,
        SANDBOXED,
        &[
            ("appArmorProfile", app_armor_profile.is_some()),
            (
                "readOnlyRootFilesystem",
                read_only_root_filesystem.is_some(),
            ),
            ("seLinuxOptions", se_linux_options.is_some()),
            ("seccompProfile", seccomp_profile.is_some()),
            ("windowsOptions", windows_options.is_some()),
        ],
    );
    Ok(())
}

/// `image` as written and the module file it names: a path relative to `base_dir`, an
/// absolute path, or a `file://` URL.
fn resolve_image(
    image: Option<String>,
    p: &FieldPath,
    base_dir: &Path,
) -> Result<(String, PathBuf), SpecError> {
    let image = non_empty(image).ok_or_else(|| p.required())?;
    let path = match image.strip_prefix("file://") {
        Some(url_path) => url_path.strip_prefix("localhost").unwrap_or(url_path),
        None => image.as_str(),
    };
    if path.is_empty() {
        return Err(p.error(format!("invalid image {image:?}: names no file")));
    }
    let module = base_dir.join(path);
    Ok((image, module))
}

/// `workingDir`, which must be an absolute guest path.
fn absolute_guest_path(path: String, p: &FieldPath) -> Result<String, SpecError> {
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(p.error("must be an absolute path"))
    }
}

/// The guest's argv: `command` (or the module's file name) then `args`, `$(VAR)` expanded.
fn compose_argv(
    module: &Path,
    command: &[String],
    args: &[String],
    env: &[(String, String)],
) -> Vec<String> {
    let entrypoint = if command.is_empty() {
        let file_name = module.file_name().unwrap_or(module.as_os_str());
        vec![file_name.to_string_lossy().into_owned()]
    } else {
        command.iter().map(|arg| expand(arg, env)).collect()
    };
    entrypoint
        .into_iter()
        .chain(args.iter().map(|arg| expand(arg, env)))
        .collect()
}

/// Expands Kubernetes `$(VAR)` references from `env`, as the kubelet does: `$$` is a literal
/// `$`, and unresolvable or unterminated references are left as written.
fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after_escape) = after.strip_prefix('$') {
            out.push('$');
            rest = after_escape;
        } else if let Some(reference) = after.strip_prefix('(') {
            let Some(close) = reference.find(')') else {
                out.push('$');
                rest = after;
                break;
            };
            let name = &reference[..close];
            match lookup(env, name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &reference[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of `name` in `env`.
fn lookup<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `env`: literal values (with `$(VAR)` references to earlier entries expanded) and
/// `valueFrom.fieldRef` on the pod's metadata. A repeated name keeps its first position and
/// takes the last value, as the kubelet does.
fn convert_env(
    vars: Vec<core::EnvVar>,
    p: &FieldPath,
    meta: &Meta,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut env: Vec<(String, String)> = Vec::with_capacity(vars.len());
    for (i, var) in vars.into_iter().enumerate() {
        let p = p.index(i);
        let core::EnvVar {
            name,
            value,
            value_from,
        } = var;
        check_env_name(&name, &p.field("name"))?;
        let value = match (non_empty(value), value_from) {
            (Some(_), Some(_)) => {
                return Err(p
                    .field("valueFrom")
                    .error("may not be specified when value is not empty"));
            }
            (Some(value), None) => expand(&value, &env),
            (None, Some(source)) => resolve_env_source(source, &p.field("valueFrom"), meta)?,
            (None, None) => String::new(),
        };
        match env.iter_mut().find(|(key, _)| *key == name) {
            Some(existing) => existing.1 = value,
            None => env.push((name, value)),
        }
    }
    Ok(env)
}

/// Environment variable names: printable ASCII without `=`, as Kubernetes allows.
fn check_env_name(name: &str, p: &FieldPath) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(p.required());
    }
    if name.chars().all(|c| matches!(c, ' '..='~') && c != '=') {
        Ok(())
    } else {
        Err(p.error(format!(
            "invalid value {name:?}: must consist of printable ascii characters other than '='"
        )))
    }
}

/// `valueFrom`: only `fieldRef` on metadata the runtime knows.
fn resolve_env_source(
    source: core::EnvVarSource,
    p: &FieldPath,
    meta: &Meta,
) -> Result<String, SpecError> {
    let core::EnvVarSource {
        config_map_key_ref,
        field_ref,
        file_key_ref,
        resource_field_ref,
        secret_key_ref,
    } = source;
    reject_fields(
        p,
        &[
            ("configMapKeyRef", config_map_key_ref.is_some()),
            ("fileKeyRef", file_key_ref.is_some()),
            ("resourceFieldRef", resource_field_ref.is_some()),
            ("secretKeyRef", secret_key_ref.is_some()),
        ],
    )?;
    let field_ref = field_ref.ok_or_else(|| p.error("must specify a source: fieldRef"))?;
    let core::ObjectFieldSelector {
        api_version,
        field_path,
    } = field_ref;
    let p = p.field("fieldRef");
    if field_path.is_empty() {
        return Err(p.field("fieldPath").required());
    }
    if differs_from(&api_version, "v1") {
        return Err(p.field("apiVersion").error(format!(
            "unsupported value {:?}: supported values are \"v1\"",
            api_version.unwrap_or_default()
        )));
    }
    resolve_field_path(&field_path, meta).ok_or_else(|| {
        p.field("fieldPath")
            .error(format!("{field_path:?} not supported by wasmpod"))
    })
}

/// The value of a downward-API `fieldPath` on `meta`, when it is one wasmpod provides.
fn resolve_field_path(field_path: &str, meta: &Meta) -> Option<String> {
    match field_path {
        "metadata.name" => Some(meta.name.clone()),
        "metadata.namespace" => Some(meta.namespace.clone()),
        "metadata.uid" => Some(meta.uid.clone()),
        _ => {
            let (map, key) = if let Some(key) = subscript(field_path, "metadata.labels") {
                (&meta.labels, key)
            } else {
                (
                    &meta.annotations,
                    subscript(field_path, "metadata.annotations")?,
                )
            };
            Some(map.get(key).cloned().unwrap_or_default())
        }
    }
}

/// `key` in `<prefix>['key']`.
fn subscript<'a>(field_path: &'a str, prefix: &str) -> Option<&'a str> {
    field_path
        .strip_prefix(prefix)?
        .strip_prefix("['")?
        .strip_suffix("']")
}

/// `volumeMounts`: declared volumes at distinct absolute paths.
fn convert_mounts(
    mounts: Vec<core::VolumeMount>,
    p: &FieldPath,
    volumes: &HashSet<&str>,
) -> Result<Vec<MountSpec>, SpecError> {
    let mut paths = HashSet::new();
    convert_list(mounts, p, |mount, p| {
        let mount = convert_mount(mount, p, volumes)?;
        check_unique(
            &mut paths,
            &mount.mount_path,
            &p.field("mountPath"),
            "mount path",
        )?;
        Ok(mount)
    })
}

/// One `volumeMounts` entry.
fn convert_mount(
    mount: core::VolumeMount,
    p: &FieldPath,
    volumes: &HashSet<&str>,
) -> Result<MountSpec, SpecError> {
    let core::VolumeMount {
        bind_mount_options,
        mount_path,
        mount_propagation,
        name,
        read_only,
        recursive_read_only,
        sub_path,
        sub_path_expr,
    } = mount;
    reject_fields(
        p,
        &[
            ("bindMountOptions", nonempty(&bind_mount_options)),
            ("mountPropagation", differs_from(&mount_propagation, "None")),
            (
                "recursiveReadOnly",
                differs_from(&recursive_read_only, "Disabled"),
            ),
            ("subPathExpr", nonempty_str(&sub_path_expr)),
        ],
    )?;
    if name.is_empty() {
        return Err(p.field("name").required());
    }
    if !volumes.contains(name.as_str()) {
        return Err(p
            .field("name")
            .error(format!("volume {name:?} is not declared in spec.volumes")));
    }
    if mount_path.is_empty() {
        return Err(p.field("mountPath").required());
    }
    let mount_path = absolute_guest_path(mount_path, &p.field("mountPath"))?;
    let sub_path = non_empty(sub_path)
        .map(|sub_path| check_sub_path(sub_path, &p.field("subPath")))
        .transpose()?;
    Ok(MountSpec {
        volume: name,
        mount_path,
        read_only: read_only.unwrap_or(false),
        sub_path,
    })
}

/// `subPath`: relative, without `..`.
fn check_sub_path(sub_path: String, p: &FieldPath) -> Result<String, SpecError> {
    let path = Path::new(&sub_path);
    if path.is_absolute() {
        return Err(p.error("must be a relative path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(p.error("must not contain '..'"));
    }
    Ok(sub_path)
}

/// A parsed `requests` or `limits` map: memory in bytes, cpu in millicores, and the
/// quantities as written (for messages).
#[derive(Debug, Default)]
struct ResourceList {
    memory: Option<(u64, String)>,
    cpu: Option<(u64, String)>,
}

/// `resources`: memory and cpu requests and limits; a missing request defaults to the limit.
fn convert_resources(
    resources: Option<core::ResourceRequirements>,
    p: &FieldPath,
) -> Result<Resources, SpecError> {
    let Some(core::ResourceRequirements {
        claims,
        limits,
        requests,
    }) = resources
    else {
        return Ok(Resources::default());
    };
    reject_fields(p, &[("claims", nonempty(&claims))])?;
    let limits = parse_resource_list(limits.unwrap_or_default(), &p.field("limits"))?;
    let requests = parse_resource_list(requests.unwrap_or_default(), &p.field("requests"))?;
    let requests_p = p.field("requests");
    check_request_within_limit(&requests.memory, &limits.memory, "memory", &requests_p)?;
    check_request_within_limit(&requests.cpu, &limits.cpu, "cpu", &requests_p)?;
    let value = |entry: &Option<(u64, String)>| entry.as_ref().map(|(v, _)| *v);
    Ok(Resources {
        memory_request: value(&requests.memory).or(value(&limits.memory)),
        memory_limit: value(&limits.memory),
        cpu_request: value(&requests.cpu).or(value(&limits.cpu)),
        cpu_limit: value(&limits.cpu),
    })
}

/// Parses one `requests`/`limits` map.
fn parse_resource_list(
    list: BTreeMap<String, Quantity>,
    p: &FieldPath,
) -> Result<ResourceList, SpecError> {
    let mut parsed = ResourceList::default();
    for (name, Quantity(quantity)) in list {
        let p = p.key(&name);
        let parse = match name.as_str() {
            "memory" => parse_memory_bytes,
            "cpu" => parse_cpu_millis,
            "ephemeral-storage" => {
                parse_memory_bytes(&quantity).map_err(|e| p.error(e))?;
                tracing::debug!(field = %p, "{NOT_APPLICABLE}");
                continue;
            }
            _ => return Err(p.unsupported()),
        };
        let value = parse(&quantity).map_err(|e| p.error(e))?;
        let slot = if name == "memory" {
            &mut parsed.memory
        } else {
            &mut parsed.cpu
        };
        *slot = Some((value, quantity));
    }
    Ok(parsed)
}

/// A request may not exceed its limit.
fn check_request_within_limit(
    request: &Option<(u64, String)>,
    limit: &Option<(u64, String)>,
    resource: &str,
    p: &FieldPath,
) -> Result<(), SpecError> {
    match (request, limit) {
        (Some((request, _)), Some((limit, limit_text))) if request > limit => {
            Err(p.key(resource).error(format!(
                "must be less than or equal to {resource} limit of {limit_text}"
            )))
        }
        _ => Ok(()),
    }
}

/// `ports[].containerPort`; host ports cannot be honoured.
fn convert_ports(ports: Vec<core::ContainerPort>, p: &FieldPath) -> Result<Vec<u16>, SpecError> {
    convert_list(ports, p, convert_port)
}

/// One `ports` entry.
fn convert_port(port: core::ContainerPort, p: &FieldPath) -> Result<u16, SpecError> {
    let core::ContainerPort {
        container_port,
        host_ip,
        host_port,
        name,
        protocol,
    } = port;
    reject_fields(
        p,
        &[
            ("hostIP", nonempty_str(&host_ip)),
            ("hostPort", host_port.is_some_and(|port| port != 0)),
        ],
    )?;
    ignore_fields(p, NOT_APPLICABLE, &[("name", name.is_some())]);
    match non_empty(protocol).as_deref() {
        None | Some("TCP" | "UDP" | "SCTP") => {}
        Some(other) => {
            return Err(p.field("protocol").error(format!(
                "unsupported value {other:?}: supported values are \"TCP\", \"UDP\", \"SCTP\""
            )));
        }
    }
    u16::try_from(container_port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| {
            p.field("containerPort")
                .error("must be between 1 and 65535, inclusive")
        })
}

/// `lifecycle`: only `preStop.exec`, and only on app containers.
fn convert_lifecycle(
    lifecycle: Option<core::Lifecycle>,
    p: &FieldPath,
    kind: ContainerKind,
) -> Result<Option<Vec<String>>, SpecError> {
    let Some(core::Lifecycle {
        post_start,
        pre_stop,
        stop_signal,
    }) = lifecycle
    else {
        return Ok(None);
    };
    reject_fields(
        p,
        &[
            ("postStart", post_start.is_some()),
            ("stopSignal", stop_signal.is_some()),
        ],
    )?;
    let Some(handler) = pre_stop else {
        return Ok(None);
    };
    let p = p.field("preStop");
    if kind == ContainerKind::Init {
        return Err(p.error("may not be set for init containers"));
    }
    let core::LifecycleHandler {
        exec,
        http_get,
        sleep,
        tcp_socket,
    } = handler;
    reject_fields(
        &p,
        &[
            ("httpGet", http_get.is_some()),
            ("sleep", sleep.is_some()),
            ("tcpSocket", tcp_socket.is_some()),
        ],
    )?;
    let core::ExecAction { command } = exec.ok_or_else(|| p.field("exec").required())?;
    match command {
        Some(command) if !command.is_empty() => Ok(Some(command)),
        _ => Err(p.field("exec.command").required()),
    }
}

// ---------------------------------------------------------------------------------------------
// Names and identifiers
// ---------------------------------------------------------------------------------------------

/// The longest DNS-1123 label.
const MAX_LABEL: usize = 63;
/// The longest DNS-1123 subdomain.
const MAX_SUBDOMAIN: usize = 253;

/// Whether `s` is `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (length not checked).
fn is_label_text(s: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(alphanumeric)
        && s.ends_with(alphanumeric)
        && s.chars().all(|c| alphanumeric(c) || c == '-')
}

/// A DNS-1123 label: container, volume and namespace names, hostnames.
fn check_dns_label(name: &str, p: &FieldPath) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(p.required());
    }
    if name.len() <= MAX_LABEL && is_label_text(name) {
        Ok(())
    } else {
        Err(p.error(format!(
            "invalid value {name:?}: must be a dns-1123 label (at most 63 lowercase letters, \
             digits and '-', starting and ending with a letter or digit)"
        )))
    }
}

/// A DNS-1123 subdomain: pod names.
fn check_dns_subdomain(name: &str, p: &FieldPath) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(p.required());
    }
    if name.len() <= MAX_SUBDOMAIN && name.split('.').all(is_label_text) {
        Ok(())
    } else {
        Err(p.error(format!(
            "invalid value {name:?}: must be a dns-1123 subdomain (at most 253 lowercase \
             letters, digits, '-' and '.', starting and ending with a letter or digit)"
        )))
    }
}

/// 64 unpredictable bits: a per-process random hash key over the time, pid and a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    RandomState::new().hash_one((nanos, std::process::id(), count))
}

/// A random version-4 UUID, for pods without `metadata.uid`.
fn generate_uid() -> String {
    let bits = (u128::from(random_u64()) << 64) | u128::from(random_u64());
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Five random characters from the alphabet Kubernetes uses for `generateName`.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = random_u64();
    (0..5)
        .map(|_| {
            let len = ALPHABET.len() as u64;
            let c = ALPHABET[usize::try_from(bits % len).unwrap_or(0)];
            bits /= len;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/pods";

    fn parse(text: &str) -> Result<PodSpec, SpecError> {
        parse_pod(text, Path::new(BASE))
    }

    /// A pod named `demo` whose `spec` is `spec_yaml` (written at column 0).
    fn pod(spec_yaml: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo\nspec:\n{}",
            indent(spec_yaml)
        )
    }

    /// A pod with one container `web` (image `web.wasm`) extended by `container_yaml`.
    fn pod_with_container(container_yaml: &str) -> String {
        let mut spec = String::from("containers:\n- name: web\n  image: web.wasm\n");
        for line in container_yaml.lines() {
            spec.push_str(&format!("  {line}\n"));
        }
        pod(&spec)
    }

    fn indent(text: &str) -> String {
        text.lines().map(|line| format!("  {line}\n")).collect()
    }

    fn ok(text: &str) -> PodSpec {
        match parse(text) {
            Ok(spec) => spec,
            Err(e) => panic!("unexpected error: {e}\n{text}"),
        }
    }

    fn err(text: &str) -> String {
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
    fn assert_errors<T: AsRef<str>, W: AsRef<str>>(cases: &[(T, W)]) {
        for (text, want) in cases {
            assert_eq!(err(text.as_ref()), want.as_ref(), "{}", text.as_ref());
        }
    }

    fn container(spec: &PodSpec) -> &ContainerSpec {
        &spec.containers[0]
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const DRY_RUN: &str = "\
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: demo
  name: demo
spec:
  containers:
  - image: hello.wasm
    name: demo
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
";

    const GET_OUTPUT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/default-container: web
  creationTimestamp: "2024-05-01T10:00:00Z"
  generateName: web-7d9f8b6c5-
  generation: 1
  labels:
    app: web
    pod-template-hash: 7d9f8b6c5
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:labels:
          .: {}
          f:app: {}
    manager: kube-controller-manager
    operation: Update
    time: "2024-05-01T10:00:00Z"
  name: web-7d9f8b6c5-x2x8k
  namespace: prod
  ownerReferences:
  - apiVersion: apps/v1
    blockOwnerDeletion: true
    controller: true
    kind: ReplicaSet
    name: web-7d9f8b6c5
    uid: 0b6f5a52-3c1e-4b8e-9a51-2f0c7c1d9e11
  resourceVersion: "123456"
  uid: 5f2d0c9e-8a3b-4f1e-b0a4-6c2e9d7f1a20
spec:
  containers:
  - args:
    - --port=8080
    image: web.wasm
    imagePullPolicy: IfNotPresent
    name: web
    ports:
    - containerPort: 8080
      name: http
      protocol: TCP
    resources:
      limits:
        cpu: 500m
        memory: 128Mi
      requests:
        cpu: 250m
        memory: 64Mi
    securityContext:
      allowPrivilegeEscalation: false
      capabilities:
        drop:
        - ALL
      privileged: false
      readOnlyRootFilesystem: true
      runAsNonRoot: true
      runAsUser: 1000
      seccompProfile:
        type: RuntimeDefault
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /data
      name: data
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: node-1
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext:
    fsGroup: 2000
    runAsGroup: 3000
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  - effect: NoExecute
    key: node.kubernetes.io/unreachable
    operator: Exists
    tolerationSeconds: 300
  volumes:
  - emptyDir: {}
    name: data
status:
  conditions:
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:02Z"
    observedGeneration: 1
    status: "True"
    type: PodReadyToStartContainers
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:00Z"
    status: "True"
    type: Initialized
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:02Z"
    status: "True"
    type: Ready
  containerStatuses:
  - allocatedResources:
      cpu: 250m
      memory: 64Mi
    containerID: containerd://4f1c2b
    image: docker.io/library/web:1.0
    imageID: docker.io/library/web@sha256:0123abcd
    lastState: {}
    name: web
    ready: true
    resources:
      limits:
        cpu: 500m
        memory: 128Mi
      requests:
        cpu: 250m
        memory: 64Mi
    restartCount: 0
    started: true
    state:
      running:
        startedAt: "2024-05-01T10:00:01Z"
    user:
      linux:
        gid: 0
        supplementalGroups:
        - 0
        uid: 1000
    volumeMounts:
    - mountPath: /data
      name: data
  hostIP: 10.0.0.5
  hostIPs:
  - ip: 10.0.0.5
  observedGeneration: 1
  phase: Running
  podIP: 10.244.1.7
  podIPs:
  - ip: 10.244.1.7
  qosClass: Burstable
  startTime: "2024-05-01T10:00:00Z"
"#;

    // --- whole manifests ---------------------------------------------------------------------

    #[test]
    fn kubectl_dry_run_manifest() {
        let spec = ok(DRY_RUN);
        assert_eq!(spec.name, "demo");
        assert_eq!(spec.namespace, "default");
        assert_eq!(spec.hostname, "demo");
        assert_eq!(
            spec.labels,
            BTreeMap::from([("run".to_string(), "demo".to_string())])
        );
        assert!(spec.annotations.is_empty());
        assert_eq!(spec.restart_policy, RestartPolicy::Always);
        assert_eq!(spec.termination_grace_period, Duration::from_secs(30));
        assert_eq!(spec.active_deadline, None);
        assert!(spec.init_containers.is_empty());
        assert!(spec.volumes.is_empty());
        assert_eq!(
            spec.containers,
            vec![ContainerSpec {
                name: "demo".to_string(),
                image: "hello.wasm".to_string(),
                module: PathBuf::from("/pods/hello.wasm"),
                argv: strings(&["hello.wasm"]),
                env: Vec::new(),
                working_dir: None,
                mounts: Vec::new(),
                resources: Resources::default(),
                ports: Vec::new(),
                pre_stop: None,
            }]
        );
        assert_uuid(&spec.uid);
    }

    #[test]
    fn kubectl_get_output_manifest() {
        let spec = ok(GET_OUTPUT);
        assert_eq!(spec.name, "web-7d9f8b6c5-x2x8k");
        assert_eq!(spec.namespace, "prod");
        assert_eq!(spec.uid, "5f2d0c9e-8a3b-4f1e-b0a4-6c2e9d7f1a20");
        assert_eq!(spec.hostname, "web-7d9f8b6c5-x2x8k");
        assert_eq!(spec.labels.len(), 2);
        assert_eq!(
            spec.annotations
                .get("kubectl.kubernetes.io/default-container"),
            Some(&"web".to_string())
        );
        assert_eq!(
            spec.volumes,
            vec![VolumeSpec {
                name: "data".to_string(),
                source: VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: None
                },
            }]
        );
        let web = container(&spec);
        assert_eq!(web.argv, strings(&["web.wasm", "--port=8080"]));
        assert_eq!(web.ports, vec![8080]);
        assert_eq!(
            web.mounts,
            vec![MountSpec {
                volume: "data".to_string(),
                mount_path: "/data".to_string(),
                read_only: false,
                sub_path: None,
            }]
        );
        assert_eq!(
            web.resources,
            Resources {
                memory_request: Some(64 << 20),
                memory_limit: Some(128 << 20),
                cpu_request: Some(250),
                cpu_limit: Some(500),
            }
        );
    }

    #[test]
    fn json_manifest() {
        let json = r#"{
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "demo", "namespace": "jobs", "uid": "u-1"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "/opt/main.wasm", "command": ["main", "-v"]}]
            }
        }"#;
        let spec = ok(json);
        assert_eq!(spec.namespace, "jobs");
        assert_eq!(spec.uid, "u-1");
        assert_eq!(spec.restart_policy, RestartPolicy::Never);
        assert_eq!(container(&spec).module, PathBuf::from("/opt/main.wasm"));
        assert_eq!(container(&spec).argv, strings(&["main", "-v"]));
    }

    #[test]
    fn pod_level_settings() {
        let spec = ok(&pod("\
restartPolicy: OnFailure
terminationGracePeriodSeconds: 5
activeDeadlineSeconds: 600
hostname: box
subdomain: svc
containers:
- {name: web, image: web.wasm}
"));
        assert_eq!(spec.restart_policy, RestartPolicy::OnFailure);
        assert_eq!(spec.termination_grace_period, Duration::from_secs(5));
        assert_eq!(spec.active_deadline, Some(Duration::from_secs(600)));
        assert_eq!(spec.hostname, "box");
    }

    #[test]
    fn accepted_scheduler_fields() {
        ok(&pod("\
affinity: {nodeAffinity: {}}
automountServiceAccountToken: false
dnsConfig: {nameservers: [1.1.1.1]}
hostNetwork: false
hostPID: false
hostIPC: false
hostUsers: false
shareProcessNamespace: false
imagePullSecrets: [{name: regcred}]
nodeSelector: {disk: ssd}
os: {name: linux}
overhead: {cpu: 10m}
priorityClassName: high
readinessGates: [{conditionType: www.example.com/ready}]
runtimeClassName: wasmtime
schedulingGates: [{name: wait}]
setHostnameAsFQDN: false
topologySpreadConstraints: []
resources: {}
containers:
- name: web
  image: web.wasm
  imagePullPolicy: Always
  resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]
  stdin: false
  tty: false
  restartPolicy: ''
  ports: [{containerPort: 80, hostPort: 0, hostIP: ''}]
  resources: {limits: {ephemeral-storage: 1Gi}}
"));
    }

    // --- document and type errors ------------------------------------------------------------

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
    fn missing_spec_and_containers() {
        assert_errors(&[
            (
                "apiVersion: v1\nkind: Pod\nmetadata: {name: demo}\n".to_string(),
                "spec: required value",
            ),
            (
                pod("containers: []\n"),
                "spec.containers: at least one container is required",
            ),
            (
                pod("containers:\n"),
                "spec.containers: at least one container is required",
            ),
        ]);
    }

    // --- unknown fields ----------------------------------------------------------------------

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

    // --- names -------------------------------------------------------------------------------

    #[test]
    fn duplicate_container_names_across_init_and_app() {
        assert_eq!(
            err(&pod("\
initContainers:
- {name: web, image: init.wasm}
containers:
- {name: api, image: api.wasm}
- {name: web, image: web.wasm}
")),
            "spec.containers[1].name: duplicate container name \"web\""
        );
    }

    #[test]
    fn metadata_names() {
        assert_eq!(
            err(
                "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: a, image: a.wasm}]}\n"
            ),
            "metadata.name: required value"
        );
        let e = err(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: Demo}\nspec: {containers: [{name: a, image: a.wasm}]}\n",
        );
        assert!(
            e.starts_with("metadata.name: invalid value \"Demo\": must be a dns-1123 subdomain"),
            "{e}"
        );
        let e = err(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: demo, namespace: a.b}\nspec: {containers: [{name: a, image: a.wasm}]}\n",
        );
        assert!(
            e.starts_with("metadata.namespace: invalid value \"a.b\""),
            "{e}"
        );
        let e = err(&pod("containers: [{name: Web_1, image: a.wasm}]"));
        assert!(
            e.starts_with(
                "spec.containers[0].name: invalid value \"Web_1\": must be a dns-1123 label"
            ),
            "{e}"
        );
        assert_eq!(
            err(&pod("containers: [{image: a.wasm}]")),
            "spec.containers[0].name: required value"
        );
    }

    #[test]
    fn generate_name_and_long_names() {
        let spec = ok(
            "apiVersion: v1\nkind: Pod\nmetadata: {generateName: job-}\nspec: {containers: [{name: a, image: a.wasm}]}\n",
        );
        assert_eq!(spec.name.len(), 9);
        assert!(spec.name.starts_with("job-"), "{}", spec.name);
        assert_eq!(spec.hostname, spec.name);

        let long = format!("{}-{}.x", "a".repeat(62), "b".repeat(10));
        let spec = ok(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {long}}}\nspec: {{containers: [{{name: a, image: a.wasm}}]}}\n"
        ));
        assert_eq!(spec.name, long);
        assert_eq!(spec.hostname, "a".repeat(62));
    }

    #[test]
    fn hostname_override_wins() {
        let spec = ok(&pod(
            "hostname: box\nhostnameOverride: box.example.com\ncontainers: [{name: a, image: a.wasm}]",
        ));
        assert_eq!(spec.hostname, "box.example.com");
        let e = err(&pod(
            "hostname: Box\ncontainers: [{name: a, image: a.wasm}]",
        ));
        assert!(e.starts_with("spec.hostname: invalid value \"Box\""), "{e}");
    }

    #[test]
    fn generated_uids_are_unique_uuids() {
        let a = generate_uid();
        let b = generate_uid();
        assert_uuid(&a);
        assert_uuid(&b);
        assert_ne!(a, b);
    }

    fn assert_uuid(uid: &str) {
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

    // --- pod-level policy --------------------------------------------------------------------

    #[test]
    fn host_namespaces_are_unsupported() {
        for field in ["hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"] {
            assert_eq!(
                err(&pod(&format!(
                    "{field}: true\ncontainers: [{{name: a, image: a.wasm}}]"
                ))),
                format!("spec.{field}: not supported by wasmpod")
            );
        }
    }

    #[test]
    fn unsupported_pod_fields() {
        let cases = [
            (
                "hostAliases: [{ip: 1.2.3.4, hostnames: [x]}]",
                "spec.hostAliases",
            ),
            ("resources: {limits: {cpu: '1'}}", "spec.resources"),
            ("resourceClaims: [{name: gpu}]", "spec.resourceClaims"),
            (
                "ephemeralContainers: [{name: dbg, image: dbg.wasm}]",
                "spec.ephemeralContainers",
            ),
            (
                "securityContext: {sysctls: [{name: net.core.somaxconn, value: '1024'}]}",
                "spec.securityContext.sysctls",
            ),
        ];
        for (yaml, path) in cases {
            assert_eq!(
                err(&pod(&format!(
                    "{yaml}\ncontainers: [{{name: a, image: a.wasm}}]"
                ))),
                format!("{path}: not supported by wasmpod")
            );
        }
    }

    #[test]
    fn pod_level_value_errors() {
        let with = |yaml: &str| pod(&format!("{yaml}\ncontainers: [{{name: a, image: a.wasm}}]"));
        assert_errors(&[
            (
                with("restartPolicy: Sometimes"),
                "spec.restartPolicy: unsupported value \"Sometimes\": supported values are \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                with("terminationGracePeriodSeconds: -1"),
                "spec.terminationGracePeriodSeconds: must be greater than or equal to 0",
            ),
            (
                with("activeDeadlineSeconds: 0"),
                "spec.activeDeadlineSeconds: must be greater than 0",
            ),
            (
                with("os: {name: windows}"),
                "spec.os.name: \"windows\" not supported by wasmpod",
            ),
        ]);
    }

    // --- container policy --------------------------------------------------------------------

    #[test]
    fn privileged_is_unsupported() {
        assert_eq!(
            err(&pod_with_container("securityContext: {privileged: true}")),
            "spec.containers[0].securityContext.privileged: not supported by wasmpod"
        );
        assert_eq!(
            err(&pod("\
containers:
- {name: a, image: a.wasm}
- name: b
  image: b.wasm
  securityContext:
    privileged: true
")),
            "spec.containers[1].securityContext.privileged: not supported by wasmpod"
        );
    }

    #[test]
    fn security_context_escalations_are_unsupported() {
        let cases = [
            ("allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
            ("capabilities: {add: [NET_ADMIN]}", "capabilities.add"),
            ("procMount: Unmasked", "procMount"),
        ];
        for (yaml, field) in cases {
            assert_eq!(
                err(&pod_with_container(&format!("securityContext: {{{yaml}}}"))),
                format!("spec.containers[0].securityContext.{field}: not supported by wasmpod")
            );
        }
        ok(&pod_with_container(
            "securityContext: {privileged: false, procMount: Default, capabilities: {add: [], drop: [ALL]}, runAsGroup: 1, seLinuxOptions: {level: s0}}",
        ));
    }

    #[test]
    fn unsupported_container_fields() {
        let cases = [
            ("livenessProbe: {exec: {command: [probe]}}", "livenessProbe"),
            ("readinessProbe: {tcpSocket: {port: 80}}", "readinessProbe"),
            ("startupProbe: {httpGet: {port: 80}}", "startupProbe"),
            ("stdin: true", "stdin"),
            ("stdinOnce: true", "stdinOnce"),
            ("tty: true", "tty"),
            ("envFrom: [{configMapRef: {name: cfg}}]", "envFrom"),
            (
                "volumeDevices: [{name: d, devicePath: /dev/xvda}]",
                "volumeDevices",
            ),
            ("restartPolicy: Always", "restartPolicy"),
            (
                "lifecycle: {postStart: {exec: {command: [x]}}}",
                "lifecycle.postStart",
            ),
            ("lifecycle: {stopSignal: SIGUSR1}", "lifecycle.stopSignal"),
            (
                "lifecycle: {preStop: {httpGet: {port: 80}}}",
                "lifecycle.preStop.httpGet",
            ),
            (
                "lifecycle: {preStop: {sleep: {seconds: 3}}}",
                "lifecycle.preStop.sleep",
            ),
            (
                "ports: [{containerPort: 80, hostPort: 8080}]",
                "ports[0].hostPort",
            ),
            (
                "ports: [{containerPort: 80, hostIP: 0.0.0.0}]",
                "ports[0].hostIP",
            ),
            (
                "resources: {limits: {nvidia.com/gpu: 1}}",
                "resources.limits[nvidia.com/gpu]",
            ),
            (
                "resources: {requests: {hugepages-2Mi: 1Gi}}",
                "resources.requests[hugepages-2Mi]",
            ),
            ("resources: {claims: [{name: gpu}]}", "resources.claims"),
        ];
        for (yaml, field) in cases {
            assert_eq!(
                err(&pod_with_container(yaml)),
                format!("spec.containers[0].{field}: not supported by wasmpod"),
                "{yaml}"
            );
        }
    }

    #[test]
    fn init_containers_are_converted_in_order() {
        let spec = ok(&pod("\
initContainers:
- {name: one, image: one.wasm}
- {name: two, image: sub/two.wasm, args: [x]}
containers:
- {name: web, image: web.wasm}
"));
        let names: Vec<&str> = spec
            .init_containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["one", "two"]);
        assert_eq!(
            spec.init_containers[1].module,
            PathBuf::from("/pods/sub/two.wasm")
        );
        assert_eq!(spec.init_containers[1].argv, strings(&["two.wasm", "x"]));
        assert_eq!(
            err(&pod("\
initContainers:
- name: one
  image: one.wasm
  lifecycle: {preStop: {exec: {command: [x]}}}
containers:
- {name: web, image: web.wasm}
")),
            "spec.initContainers[0].lifecycle.preStop: may not be set for init containers"
        );
        assert_eq!(
            err(&pod("\
initContainers:
- {name: one, image: one.wasm, securityContext: {privileged: true}}
containers:
- {name: web, image: web.wasm}
")),
            "spec.initContainers[0].securityContext.privileged: not supported by wasmpod"
        );
    }

    #[test]
    fn pre_stop_exec() {
        let spec = ok(&pod_with_container(
            "lifecycle: {preStop: {exec: {command: [stop, --now]}}}",
        ));
        assert_eq!(container(&spec).pre_stop, Some(strings(&["stop", "--now"])));
        assert_errors(&[
            (
                pod_with_container("lifecycle: {preStop: {}}"),
                "spec.containers[0].lifecycle.preStop.exec: required value",
            ),
            (
                pod_with_container("lifecycle: {preStop: {exec: {}}}"),
                "spec.containers[0].lifecycle.preStop.exec.command: required value",
            ),
        ]);
    }

    #[test]
    fn images() {
        let module = |image: &str| {
            container(&ok(&pod(&format!(
                "containers: [{{name: a, image: '{image}'}}]"
            ))))
            .module
            .clone()
        };
        assert_eq!(module("a.wasm"), PathBuf::from("/pods/a.wasm"));
        assert_eq!(
            module("../lib/a.wasm"),
            PathBuf::from("/pods/../lib/a.wasm")
        );
        assert_eq!(module("/abs/a.wasm"), PathBuf::from("/abs/a.wasm"));
        assert_eq!(module("file:///abs/a.wasm"), PathBuf::from("/abs/a.wasm"));
        assert_eq!(
            module("file://localhost/abs/a.wasm"),
            PathBuf::from("/abs/a.wasm")
        );
        assert_eq!(
            module("docker.io/library/nginx:1.27"),
            PathBuf::from("/pods/docker.io/library/nginx:1.27")
        );
        assert_eq!(
            err(&pod("containers: [{name: a}]")),
            "spec.containers[0].image: required value"
        );
        assert_eq!(
            err(&pod("containers: [{name: a, image: 'file://'}]")),
            "spec.containers[0].image: invalid image \"file://\": names no file"
        );
    }

    #[test]
    fn working_dir() {
        let spec = ok(&pod_with_container("workingDir: /work"));
        assert_eq!(container(&spec).working_dir.as_deref(), Some("/work"));
        assert_eq!(
            err(&pod_with_container("workingDir: work")),
            "spec.containers[0].workingDir: must be an absolute path"
        );
    }

    #[test]
    fn ports() {
        let spec = ok(&pod_with_container(
            "ports: [{containerPort: 80}, {containerPort: 65535, protocol: UDP, name: dns}]",
        ));
        assert_eq!(container(&spec).ports, vec![80, 65535]);
        for port in ["0", "65536", "-1"] {
            assert_eq!(
                err(&pod_with_container(&format!(
                    "ports: [{{containerPort: {port}}}]"
                ))),
                "spec.containers[0].ports[0].containerPort: must be between 1 and 65535, inclusive"
            );
        }
        assert_eq!(
            err(&pod_with_container(
                "ports: [{containerPort: 80, protocol: HTTP}]"
            )),
            "spec.containers[0].ports[0].protocol: unsupported value \"HTTP\": supported values are \"TCP\", \"UDP\", \"SCTP\""
        );
    }

    // --- env and argv ------------------------------------------------------------------------

    #[test]
    fn env_field_refs_and_expansion() {
        let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: demo
  namespace: team
  uid: u-1234
  labels: {app: web}
  annotations: {note: hi there}
spec:
  containers:
  - name: web
    image: web.wasm
    command: [server, --name=$(POD_NAME)]
    args: [$(GREETING), $$(POD_NAME), $(MISSING), $(LATER)]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}}
    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}
    - {name: NOTE, valueFrom: {fieldRef: {fieldPath: \"metadata.annotations['note']\"}}}
    - {name: NONE, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['absent']\"}}}
    - {name: GREETING, value: hello $(POD_NAME) in $(NS)}
    - {name: EARLY, value: $(LATER)}
    - {name: LATER, value: later}
    - {name: ESCAPED, value: $$(NS)}
    - {name: EMPTY}
    - {name: NS, value: override}
";
        let spec = ok(text);
        let web = container(&spec);
        assert_eq!(
            web.env,
            env(&[
                ("POD_NAME", "demo"),
                ("NS", "override"),
                ("UID", "u-1234"),
                ("APP", "web"),
                ("NOTE", "hi there"),
                ("NONE", ""),
                ("GREETING", "hello demo in team"),
                ("EARLY", "$(LATER)"),
                ("LATER", "later"),
                ("ESCAPED", "$(NS)"),
                ("EMPTY", ""),
            ])
        );
        assert_eq!(
            web.argv,
            strings(&[
                "server",
                "--name=demo",
                "hello demo in team",
                "$(POD_NAME)",
                "$(MISSING)",
                "later",
            ])
        );
    }

    #[test]
    fn env_errors() {
        let with_env = |yaml: &str| pod_with_container(&format!("env: [{yaml}]"));
        let p = "spec.containers[0].env[0]";
        let unsupported = |field: &str| format!("{p}.valueFrom.{field}: not supported by wasmpod");
        assert_errors(&[
            (
                with_env("{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}"),
                &unsupported("secretKeyRef"),
            ),
            (
                with_env("{name: X, valueFrom: {configMapKeyRef: {name: c, key: k}}}"),
                &unsupported("configMapKeyRef"),
            ),
            (
                with_env("{name: X, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}"),
                &unsupported("resourceFieldRef"),
            ),
            (
                with_env("{name: X, valueFrom: {fieldRef: {fieldPath: status.podIP}}}"),
                &format!(
                    "{p}.valueFrom.fieldRef.fieldPath: \"status.podIP\" not supported by wasmpod"
                ),
            ),
            (
                with_env(
                    "{name: X, valueFrom: {fieldRef: {apiVersion: v2, fieldPath: metadata.name}}}",
                ),
                &format!(
                    "{p}.valueFrom.fieldRef.apiVersion: unsupported value \"v2\": supported values are \"v1\""
                ),
            ),
            (
                with_env("{name: X, valueFrom: {}}"),
                &format!("{p}.valueFrom: must specify a source: fieldRef"),
            ),
            (
                with_env("{name: X, value: v, valueFrom: {fieldRef: {fieldPath: metadata.name}}}"),
                &format!("{p}.valueFrom: may not be specified when value is not empty"),
            ),
            (
                with_env("{name: 'A=B', value: v}"),
                &format!(
                    "{p}.name: invalid value \"A=B\": must consist of printable ascii characters other than '='"
                ),
            ),
            (with_env("{value: v}"), &format!("{p}.name: required value")),
            (
                with_env("{name: X, valueFrom: {fieldRef: {}}}"),
                &format!("{p}.valueFrom.fieldRef.fieldPath: required value"),
            ),
        ]);
    }

    #[test]
    fn argv_composition() {
        let argv = |yaml: &str| container(&ok(&pod_with_container(yaml))).argv.clone();
        assert_eq!(argv(""), strings(&["web.wasm"]));
        assert_eq!(argv("args: [-v, x]"), strings(&["web.wasm", "-v", "x"]));
        assert_eq!(argv("command: [web]"), strings(&["web"]));
        assert_eq!(
            argv("command: [web, a]\nargs: [b]"),
            strings(&["web", "a", "b"])
        );
        assert_eq!(argv("command: []\nargs: [b]"), strings(&["web.wasm", "b"]));
        assert_eq!(
            argv(
                "env: [{name: X, value: '1'}]\ncommand: [$(X)]\nargs: ['$(X)$(X)', $$(X), $$$(X)]"
            ),
            strings(&["1", "11", "$(X)", "$1"])
        );
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = env(&[("A", "a"), ("EMPTY", "")]);
        let cases = [
            ("$(A)", "a"),
            ("x$(A)y$(A)z", "xayaz"),
            ("$(EMPTY)", ""),
            ("$(B)", "$(B)"),
            ("$()", "$()"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$$$", "$$"),
            ("$", "$"),
            ("a$", "a$"),
            ("$x", "$x"),
            ("$(A", "$(A"),
            ("$(A)$(", "a$("),
            ("é$(A)ü", "éaü"),
            ("$é", "$é"),
            ("(A)", "(A)"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &vars), want, "{input:?}");
        }
    }

    // --- volumes and mounts ------------------------------------------------------------------

    #[test]
    fn volumes() {
        let spec = ok(&pod("\
volumes:
- name: scratch
  emptyDir: {}
- name: cache
  emptyDir: {medium: Memory, sizeLimit: 64Mi}
- name: host
  hostPath: {path: /srv/data}
- name: dir
  hostPath: {path: /srv/dir, type: Directory}
- name: made
  hostPath: {path: /srv/made, type: DirectoryOrCreate}
containers:
- {name: web, image: web.wasm}
"));
        let sources: Vec<&VolumeSource> = spec.volumes.iter().map(|v| &v.source).collect();
        assert_eq!(
            sources,
            [
                &VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: None
                },
                &VolumeSource::EmptyDir {
                    memory: true,
                    size_limit: Some(64 << 20)
                },
                &VolumeSource::HostPath {
                    path: PathBuf::from("/srv/data"),
                    kind: HostPathType::Unset
                },
                &VolumeSource::HostPath {
                    path: PathBuf::from("/srv/dir"),
                    kind: HostPathType::Directory
                },
                &VolumeSource::HostPath {
                    path: PathBuf::from("/srv/made"),
                    kind: HostPathType::DirectoryOrCreate
                },
            ]
        );
        assert_eq!(spec.volume("cache").map(|v| v.name.as_str()), Some("cache"));
    }

    fn volume_err(volume_yaml: &str) -> String {
        err(&pod(&format!(
            "volumes:\n- {volume_yaml}\ncontainers: [{{name: a, image: a.wasm}}]"
        )))
    }

    #[test]
    fn volume_errors() {
        assert_eq!(
            err(&pod("\
volumes:
- {name: data, emptyDir: {}}
- {name: data, hostPath: {path: /tmp}}
containers: [{name: a, image: a.wasm}]
")),
            "spec.volumes[1].name: duplicate volume name \"data\""
        );
        let cases = [
            (
                "{name: c, configMap: {name: cfg}}",
                "spec.volumes[0].configMap: not supported by wasmpod",
            ),
            (
                "{name: s, secret: {secretName: s}}",
                "spec.volumes[0].secret: not supported by wasmpod",
            ),
            (
                "{name: p, persistentVolumeClaim: {claimName: pvc}}",
                "spec.volumes[0].persistentVolumeClaim: not supported by wasmpod",
            ),
            (
                "{name: kube-api-access-x2x8k, projected: {sources: [{serviceAccountToken: {path: token}}]}}",
                "spec.volumes[0].projected: not supported by wasmpod",
            ),
            ("{name: d}", "spec.volumes[0]: must specify a volume source"),
            (
                "{name: d, emptyDir: {}, hostPath: {path: /x}}",
                "spec.volumes[0]: may not specify more than one volume source",
            ),
            (
                "{name: d, emptyDir: {medium: HugePages}}",
                "spec.volumes[0].emptyDir.medium: unsupported value \"HugePages\": supported values are \"\", \"Memory\"",
            ),
            (
                "{name: d, emptyDir: {sizeLimit: 1Q}}",
                "spec.volumes[0].emptyDir.sizeLimit: invalid quantity \"1Q\"",
            ),
            (
                "{name: d, hostPath: {path: rel}}",
                "spec.volumes[0].hostPath.path: must be an absolute path",
            ),
            (
                "{name: d, hostPath: {path: ''}}",
                "spec.volumes[0].hostPath.path: required value",
            ),
            (
                "{name: d, hostPath: {path: /etc/hosts, type: File}}",
                "spec.volumes[0].hostPath.type: \"File\" not supported by wasmpod: volumes are preopened directories",
            ),
            (
                "{name: d, hostPath: {path: /run/x.sock, type: Socket}}",
                "spec.volumes[0].hostPath.type: \"Socket\" not supported by wasmpod: volumes are preopened directories",
            ),
            (
                "{name: d, hostPath: {path: /x, type: Dir}}",
                "spec.volumes[0].hostPath.type: unsupported value \"Dir\": supported values are \"\", \"Directory\", \"DirectoryOrCreate\"",
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(volume_err(yaml), want, "{yaml}");
        }
        assert!(
            volume_err("{name: Data, emptyDir: {}}")
                .starts_with("spec.volumes[0].name: invalid value \"Data\"")
        );
    }

    fn mount_pod(mounts_yaml: &str) -> String {
        pod(&format!(
            "volumes: [{{name: data, emptyDir: {{}}}}, {{name: logs, emptyDir: {{}}}}]\ncontainers:\n- name: web\n  image: web.wasm\n  volumeMounts: {mounts_yaml}\n"
        ))
    }

    #[test]
    fn volume_mounts() {
        let spec = ok(&mount_pod(
            "[{name: data, mountPath: /data, readOnly: true, subPath: a/b}, {name: logs, mountPath: /, mountPropagation: None, recursiveReadOnly: Disabled}]",
        ));
        assert_eq!(
            container(&spec).mounts,
            vec![
                MountSpec {
                    volume: "data".to_string(),
                    mount_path: "/data".to_string(),
                    read_only: true,
                    sub_path: Some("a/b".to_string()),
                },
                MountSpec {
                    volume: "logs".to_string(),
                    mount_path: "/".to_string(),
                    read_only: false,
                    sub_path: None,
                },
            ]
        );
    }

    #[test]
    fn volume_mount_errors() {
        let p = "spec.containers[0].volumeMounts[0]";
        let cases = [
            (
                "[{name: cache, mountPath: /c}]",
                format!("{p}.name: volume \"cache\" is not declared in spec.volumes"),
            ),
            (
                "[{name: data, mountPath: data}]",
                format!("{p}.mountPath: must be an absolute path"),
            ),
            ("[{name: data}]", format!("{p}.mountPath: required value")),
            ("[{mountPath: /d}]", format!("{p}.name: required value")),
            (
                "[{name: data, mountPath: /d, subPath: /abs}]",
                format!("{p}.subPath: must be a relative path"),
            ),
            (
                "[{name: data, mountPath: /d, subPath: a/../../b}]",
                format!("{p}.subPath: must not contain '..'"),
            ),
            (
                "[{name: data, mountPath: /d, mountPropagation: Bidirectional}]",
                format!("{p}.mountPropagation: not supported by wasmpod"),
            ),
            (
                "[{name: data, mountPath: /d, recursiveReadOnly: Enabled}]",
                format!("{p}.recursiveReadOnly: not supported by wasmpod"),
            ),
            (
                "[{name: data, mountPath: /d, subPathExpr: $(POD)}]",
                format!("{p}.subPathExpr: not supported by wasmpod"),
            ),
            (
                "[{name: data, mountPath: /d}, {name: logs, mountPath: /d}]",
                "spec.containers[0].volumeMounts[1].mountPath: duplicate mount path \"/d\""
                    .to_string(),
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(err(&mount_pod(yaml)), want, "{yaml}");
        }
    }

    // --- resources ---------------------------------------------------------------------------

    #[test]
    fn resources_default_requests_to_limits() {
        let resources = |yaml: &str| container(&ok(&pod_with_container(yaml))).resources;
        assert_eq!(
            resources("resources: {limits: {memory: 128Mi, cpu: '1'}}"),
            Resources {
                memory_request: Some(128 << 20),
                memory_limit: Some(128 << 20),
                cpu_request: Some(1000),
                cpu_limit: Some(1000),
            }
        );
        assert_eq!(
            resources("resources: {requests: {memory: 129M, cpu: 0.5}}"),
            Resources {
                memory_request: Some(129_000_000),
                memory_limit: None,
                cpu_request: Some(500),
                cpu_limit: None,
            }
        );
        assert_eq!(
            resources("resources: {requests: {cpu: 100m}, limits: {cpu: 2, memory: 1e9}}"),
            Resources {
                memory_request: Some(1_000_000_000),
                memory_limit: Some(1_000_000_000),
                cpu_request: Some(100),
                cpu_limit: Some(2000),
            }
        );
        assert_eq!(resources("resources: {}"), Resources::default());
    }

    #[test]
    fn resource_errors() {
        let with = |yaml: &str| pod_with_container(&format!("resources: {yaml}"));
        let p = "spec.containers[0].resources";
        assert_errors(&[
            (
                with("{requests: {memory: 256Mi}, limits: {memory: 128Mi}}"),
                &format!(
                    "{p}.requests.memory: must be less than or equal to memory limit of 128Mi"
                ),
            ),
            (
                with("{requests: {cpu: '2'}, limits: {cpu: 1500m}}"),
                &format!("{p}.requests.cpu: must be less than or equal to cpu limit of 1500m"),
            ),
            (
                with("{limits: {memory: 12Q}}"),
                &format!("{p}.limits.memory: invalid quantity \"12Q\""),
            ),
            (
                with("{requests: {cpu: -1}}"),
                &format!("{p}.requests.cpu: invalid quantity \"-1\": must not be negative"),
            ),
            (
                with("{limits: {ephemeral-storage: lots}}"),
                &format!("{p}.limits[ephemeral-storage]: invalid quantity \"lots\""),
            ),
        ]);
    }

    // --- files and paths ---------------------------------------------------------------------

    #[test]
    fn parse_pod_file_reads_and_resolves_against_its_directory() {
        let dir = std::env::temp_dir().join(format!("wasmpod-spec-test-{}", std::process::id()));
        let write = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("pod.yaml"), DRY_RUN));
        assert!(write.is_ok(), "{write:?}");
        let spec = parse_pod_file(&dir.join("pod.yaml"));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = spec.map_err(|e| e.to_string());
        assert_eq!(
            spec.map(|s| s.containers[0].module.clone()),
            Ok(dir.join("hello.wasm"))
        );
    }

    #[test]
    fn parse_pod_file_reports_unreadable_files() {
        assert_eq!(
            parse_pod_file(Path::new("/nonexistent/pod.yaml")),
            Err(SpecError::new(
                "",
                "read /nonexistent/pod.yaml: No such file or directory"
            ))
        );
    }

    #[test]
    fn field_paths() {
        let p = FieldPath::root("spec").field("containers").index(2);
        assert_eq!(p.to_string(), "spec.containers[2]");
        assert_eq!(p.key("memory").to_string(), "spec.containers[2].memory");
        assert_eq!(
            p.key("nvidia.com/gpu").to_string(),
            "spec.containers[2][nvidia.com/gpu]"
        );
        assert_eq!(FieldPath::default().field("kind").to_string(), "kind");
        assert_eq!(FieldPath::default().key("a-b").to_string(), "[a-b]");
    }

    #[test]
    fn error_messages_are_lowercase() {
        let errors = [
            err(&pod_with_container("imagee: x")),
            err(&pod_with_container("securityContext: {privileged: true}")),
            err(&pod("containers: []")),
            err(&mount_pod("[{name: nope, mountPath: /x}]")),
            err("apiVersion: v1\nkind: Service\n"),
        ];
        for e in errors {
            let message = e.split_once(": ").map_or("", |(_, m)| m);
            assert!(message.starts_with(|c: char| !c.is_uppercase()), "{e}");
        }
    }
}
