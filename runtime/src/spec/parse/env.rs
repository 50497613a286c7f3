//! A container's `env` (literal values and `valueFrom.fieldRef`) and Kubernetes `$(VAR)`
//! expansion, which `env`, `command` and `args` share.

use k8s_openapi::api::core::v1 as core;

use super::field_path::FieldPath;
use super::metadata::Meta;
use super::names::check_name;
use super::objects::{ObjectKind, Objects};
use super::policy::{differs_from, is_true, non_empty, reject_fields};
use crate::spec::SpecError;

/// Expands Kubernetes `$(VAR)` references from `env`, as the kubelet does: `$$` is a literal
/// `$`, and unresolvable or unterminated references are left as written.
pub(super) fn expand(input: &str, env: &[(String, String)]) -> String {
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

/// A container's environment: `envFrom` first (every key of each ConfigMap or Secret, with the
/// source's `prefix`), then `env`: literal values (with `$(VAR)` references to earlier entries
/// expanded), `valueFrom.fieldRef` on the pod's metadata, `configMapKeyRef` and `secretKeyRef`
/// on the file's objects. A repeated name keeps its first position and takes the last value,
/// as the kubelet does; an `optional` reference to a missing object or key sets nothing.
pub(super) fn convert_env(
    env_from: Vec<core::EnvFromSource>,
    vars: Vec<core::EnvVar>,
    container: &FieldPath,
    meta: &Meta,
    objects: &Objects,
) -> Result<Vec<(String, String)>, SpecError> {
    let mut env: Vec<(String, String)> = Vec::with_capacity(vars.len());
    for (i, source) in env_from.into_iter().enumerate() {
        let p = container.field("envFrom").index(i);
        let Some((prefix, data)) = env_from_source(source, &p, meta, objects)? else {
            continue;
        };
        for (key, value) in data {
            set(&mut env, format!("{prefix}{key}"), value);
        }
    }
    for (i, var) in vars.into_iter().enumerate() {
        let p = container.field("env").index(i);
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
            (None, Some(source)) => {
                match resolve_env_source(source, &p.field("valueFrom"), meta, objects)? {
                    Some(value) => value,
                    None => continue,
                }
            }
            (None, None) => String::new(),
        };
        set(&mut env, name, value);
    }
    Ok(env)
}

/// Sets `name` in `env`: in place when it is there, else at the end.
fn set(env: &mut Vec<(String, String)>, name: String, value: String) {
    match env.iter_mut().find(|(key, _)| *key == name) {
        Some(existing) => existing.1 = value,
        None => env.push((name, value)),
    }
}

/// Environment variables, in order.
type Env = Vec<(String, String)>;

/// One `envFrom` entry: its prefix and its object's data as text, or `None` for an optional
/// object the file does not have.
fn env_from_source(
    source: core::EnvFromSource,
    p: &FieldPath,
    meta: &Meta,
    objects: &Objects,
) -> Result<Option<(String, Env)>, SpecError> {
    let core::EnvFromSource {
        config_map_ref,
        prefix,
        secret_ref,
    } = source;
    let (kind, name, optional, p) = match (config_map_ref, secret_ref) {
        (Some(r), None) => (
            ObjectKind::ConfigMap,
            r.name,
            r.optional,
            p.field("configMapRef"),
        ),
        (None, Some(r)) => (ObjectKind::Secret, r.name, r.optional, p.field("secretRef")),
        (Some(_), Some(_)) => {
            return Err(p.error("may not have more than one field specified at a time"));
        }
        (None, None) => return Err(p.error("must specify one of: configMapRef or secretRef")),
    };
    let prefix = prefix.unwrap_or_default();
    if !prefix.is_empty() {
        check_env_name(&prefix, &p.field("prefix"))?;
    }
    if name.is_empty() {
        return Err(p.field("name").required());
    }
    let Some(data) = objects.find(kind, &meta.namespace, &name, is_true(optional), &p)? else {
        return Ok(None);
    };
    let values = data
        .iter()
        .map(|(key, value)| Ok((key.clone(), text(value, kind, &name, key, &p)?)))
        .collect::<Result<_, SpecError>>()?;
    Ok(Some((prefix, values)))
}

/// A value as an environment variable's text: WASI environments are UTF-8.
fn text(
    value: &[u8],
    kind: ObjectKind,
    name: &str,
    key: &str,
    p: &FieldPath,
) -> Result<String, SpecError> {
    String::from_utf8(value.to_vec()).map_err(|_| {
        p.error(format!(
            "key {key:?} of {} {name:?} is not UTF-8 text: it cannot be an environment variable",
            kind.noun()
        ))
    })
}

/// Environment variable names: printable ASCII without `=`, as Kubernetes allows.
fn check_env_name(name: &str, p: &FieldPath) -> Result<(), SpecError> {
    check_name(
        name,
        p,
        |name| name.chars().all(|c| matches!(c, ' '..='~') && c != '='),
        "consist of printable ascii characters other than '='",
    )
}

/// `valueFrom`: `fieldRef` on metadata the runtime knows, `configMapKeyRef` and
/// `secretKeyRef` on the file's objects. `None`: an optional reference to what is missing.
fn resolve_env_source(
    source: core::EnvVarSource,
    p: &FieldPath,
    meta: &Meta,
    objects: &Objects,
) -> Result<Option<String>, SpecError> {
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
            ("fileKeyRef", file_key_ref.is_some()),
            ("resourceFieldRef", resource_field_ref.is_some()),
        ],
    )?;
    let set = [
        field_ref.is_some(),
        config_map_key_ref.is_some(),
        secret_key_ref.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(p.error("may not have more than one field specified at a time"));
    }
    if let Some(selector) = config_map_key_ref {
        let core::ConfigMapKeySelector {
            key,
            name,
            optional,
        } = selector;
        let p = p.field("configMapKeyRef");
        return key_ref(
            ObjectKind::ConfigMap,
            &name,
            &key,
            optional,
            &p,
            meta,
            objects,
        );
    }
    if let Some(selector) = secret_key_ref {
        let core::SecretKeySelector {
            key,
            name,
            optional,
        } = selector;
        let p = p.field("secretKeyRef");
        return key_ref(ObjectKind::Secret, &name, &key, optional, &p, meta, objects);
    }
    let field_ref = field_ref.ok_or_else(|| {
        p.error("must specify a source: fieldRef, configMapKeyRef or secretKeyRef")
    })?;
    let core::ObjectFieldSelector {
        api_version,
        field_path,
    } = field_ref;
    let p = p.field("fieldRef");
    if field_path.is_empty() {
        return Err(p.field("fieldPath").required());
    }
    if differs_from(&api_version, "v1") {
        return Err(p
            .field("apiVersion")
            .unsupported_value(api_version.as_deref().unwrap_or_default(), &["v1"]));
    }
    resolve_field_path(&field_path, meta)
        .map(Some)
        .ok_or_else(|| {
            p.field("fieldPath")
                .error(format!("{field_path:?} not supported by wasmpod"))
        })
}

/// The value of `key` in `kind` `name`; `None` when it or its key is missing and `optional`.
fn key_ref(
    kind: ObjectKind,
    name: &str,
    key: &str,
    optional: Option<bool>,
    p: &FieldPath,
    meta: &Meta,
    objects: &Objects,
) -> Result<Option<String>, SpecError> {
    if name.is_empty() {
        return Err(p.field("name").required());
    }
    if key.is_empty() {
        return Err(p.field("key").required());
    }
    let Some(data) = objects.find(kind, &meta.namespace, name, is_true(optional), p)? else {
        return Ok(None);
    };
    match data.get(key) {
        Some(value) => text(value, kind, name, key, p).map(Some),
        None if is_true(optional) => Ok(None),
        None => Err(p
            .field("key")
            .error(format!("{key:?} not found in {} {name:?}", kind.noun()))),
    }
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

#[cfg(test)]
mod tests {
    use super::expand;
    use crate::spec::parse::test_support::{
        assert_errors, container, env, ok, pod_with_container, strings,
    };

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
                &format!(
                    "{p}.valueFrom.secretKeyRef: secret \"s\" not found in namespace \"default\" of this manifest"
                ),
            ),
            (
                with_env("{name: X, valueFrom: {configMapKeyRef: {name: c, key: k}}}"),
                &format!(
                    "{p}.valueFrom.configMapKeyRef: configmap \"c\" not found in namespace \"default\" of this manifest"
                ),
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
                &format!(
                    "{p}.valueFrom: must specify a source: fieldRef, configMapKeyRef or secretKeyRef"
                ),
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
}
