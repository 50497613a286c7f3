//! ConfigMaps and Secrets written beside a pod in the same file: converted here, then read by
//! the pod's `env[].valueFrom` (`configMapKeyRef`, `secretKeyRef`) and `envFrom`, as kubelet
//! reads them from the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::document;
use super::field_path::FieldPath;
use super::names::{check_dns_label, check_dns_subdomain, check_name};
use crate::spec::SpecError;

/// The two kinds of object a pod reads data from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ObjectKind {
    /// `kind: ConfigMap`.
    ConfigMap,
    /// `kind: Secret`.
    Secret,
}

impl ObjectKind {
    /// As Kubernetes names it in messages (`configmap "settings" not found`).
    pub(super) fn noun(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmap",
            ObjectKind::Secret => "secret",
        }
    }
}

/// One object's data: key → bytes (a ConfigMap's `data` and `binaryData`, a Secret's decoded
/// `data` with `stringData` over it).
pub(super) type Data = BTreeMap<String, Vec<u8>>;

/// The ConfigMaps and Secrets of a manifest file, by kind, namespace and name.
#[derive(Debug, Default)]
pub(super) struct Objects {
    objects: BTreeMap<(ObjectKind, String, String), Data>,
}

impl Objects {
    /// The data of `kind` `name` in `namespace`, if the file has it.
    pub(super) fn get(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<&Data> {
        self.objects
            .get(&(kind, namespace.to_owned(), name.to_owned()))
    }

    /// The data of `kind` `name` in `namespace`, for a reference at `p`: `None` when the file
    /// does not have it and the reference is `optional`, else an error naming it.
    pub(super) fn find(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
        optional: bool,
        p: &FieldPath,
    ) -> Result<Option<&Data>, SpecError> {
        match self.get(kind, namespace, name) {
            Some(data) => Ok(Some(data)),
            None if optional => Ok(None),
            None => Err(p.error(format!(
                "{} {name:?} not found in namespace {namespace:?} of this manifest",
                kind.noun()
            ))),
        }
    }

    /// Converts a `kind: ConfigMap` or `kind: Secret` document and adds it; returns its name.
    pub(super) fn add(&mut self, kind: ObjectKind, doc: &Value) -> Result<String, SpecError> {
        let (metadata, data) = match kind {
            ObjectKind::ConfigMap => {
                let config_map: core::ConfigMap = document::deserialize(doc)?;
                document::check_unknown_fields(doc, &config_map)?;
                convert_config_map(config_map)?
            }
            ObjectKind::Secret => {
                let secret: core::Secret = document::deserialize(doc)?;
                document::check_unknown_fields(doc, &secret)?;
                convert_secret(secret)?
            }
        };
        let (namespace, name) = metadata;
        let key = (kind, namespace, name.clone());
        if self.objects.contains_key(&key) {
            return Err(FieldPath::root("metadata")
                .field("name")
                .error(format!("duplicate {} {name:?}", kind.noun())));
        }
        self.objects.insert(key, data);
        Ok(name)
    }
}

/// `(namespace, name)` of an object's metadata: the name is required, the namespace is
/// `default` when unset; the rest (labels, annotations...) is the API server's and ignored.
fn object_names(metadata: ObjectMeta) -> Result<(String, String), SpecError> {
    let p = FieldPath::root("metadata");
    let name = metadata.name.unwrap_or_default();
    check_dns_subdomain(&name, &p.field("name"))?;
    let namespace = metadata.namespace.unwrap_or_else(|| "default".to_owned());
    check_dns_label(&namespace, &p.field("namespace"))?;
    Ok((namespace, name))
}

/// A key of `data`: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`, as the API
/// server validates it (it is also a file name when the object is a volume).
fn check_key(key: &str, p: &FieldPath) -> Result<(), SpecError> {
    check_name(
        key,
        p,
        |key| {
            key.len() <= 253
                && key != "."
                && key != ".."
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        },
        "consist of alphanumeric characters, '-', '_' or '.' (at most 253, not '.' or '..')",
    )
}

type Converted = ((String, String), Data);

fn convert_config_map(config_map: core::ConfigMap) -> Result<Converted, SpecError> {
    let core::ConfigMap {
        binary_data,
        data,
        immutable: _,
        metadata,
    } = config_map;
    let names = object_names(metadata)?;
    let mut all = Data::new();
    for (key, value) in data.unwrap_or_default() {
        check_key(&key, &FieldPath::root("data").key(&key))?;
        all.insert(key, value.into_bytes());
    }
    for (key, value) in binary_data.unwrap_or_default() {
        let p = FieldPath::root("binaryData").key(&key);
        check_key(&key, &p)?;
        if all.contains_key(&key) {
            return Err(p.error("duplicate of a key in data"));
        }
        all.insert(key, value.0);
    }
    Ok((names, all))
}

fn convert_secret(secret: core::Secret) -> Result<Converted, SpecError> {
    let core::Secret {
        data,
        immutable: _,
        metadata,
        string_data,
        type_: _,
    } = secret;
    let names = object_names(metadata)?;
    let mut all = Data::new();
    for (key, value) in data.unwrap_or_default() {
        check_key(&key, &FieldPath::root("data").key(&key))?;
        all.insert(key, value.0);
    }
    // `stringData` is written over `data`, as the API server merges them.
    for (key, value) in string_data.unwrap_or_default() {
        check_key(&key, &FieldPath::root("stringData").key(&key))?;
        all.insert(key, value.into_bytes());
    }
    Ok((names, all))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::spec::{Manifest, SpecError, parse_manifest};

    const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: demo}
spec:
  containers:
  - name: app
    image: app.wasm
";

    fn manifest(text: &str) -> Result<Manifest, SpecError> {
        parse_manifest(text, Path::new("/pods"))
    }

    /// The env of the only pod's only container, parsed from `objects` then a pod with
    /// `container_yaml` added to its container.
    fn env_of(objects: &str, container_yaml: &str) -> Result<Vec<(String, String)>, SpecError> {
        let pod = format!(
            "{POD}{}",
            container_yaml
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let parsed = manifest(&format!("{objects}\n---\n{pod}"))?;
        Ok(parsed.pods[0].containers[0].env.clone())
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const OBJECTS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast, level: '3'}
binaryData: {blob: AAEC}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {user: YWRtaW4=}
stringData: {token: s3cr3t}
";

    #[test]
    fn env_reads_config_maps_and_secrets_of_the_file() {
        let env = env_of(
            OBJECTS,
            "envFrom:
- configMapRef: {name: settings}
  prefix: CFG_
- secretRef: {name: creds}
- configMapRef: {name: absent, optional: true}
env:
- {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
- {name: USER, valueFrom: {secretKeyRef: {name: creds, key: user}}}
- {name: token, value: 'from env'}
- {name: GONE, valueFrom: {configMapKeyRef: {name: settings, key: nope, optional: true}}}
- {name: ALSO_GONE, valueFrom: {secretKeyRef: {name: nobody, key: k, optional: true}}}
- {name: URL, value: 'http://$(USER):$(CFG_level)@x'}",
        );
        // binaryData is not UTF-8 here: blob is bytes 0 1 2, which are text. envFrom comes
        // first, env overrides it in place, optional misses set nothing.
        assert_eq!(
            env.expect("env"),
            pairs(&[
                ("CFG_blob", "\u{0}\u{1}\u{2}"),
                ("CFG_level", "3"),
                ("CFG_mode", "fast"),
                ("token", "from env"),
                ("user", "admin"),
                ("MODE", "fast"),
                ("USER", "admin"),
                ("URL", "http://admin:3@x"),
            ])
        );
    }

    #[test]
    fn lists_empty_documents_and_namespaces() {
        let list = "---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, \
                    metadata: {name: settings, namespace: other}, data: {mode: slow}}\n- \
                    {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {mode: \
                    fast}}\n---\n";
        let env = env_of(
            list,
            "env: [{name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}]",
        );
        assert_eq!(env.expect("env"), pairs(&[("MODE", "fast")]));
    }

    #[test]
    fn errors_name_the_document_and_the_field() {
        let bad = |objects: &str, container: &str| {
            env_of(objects, container)
                .expect_err("an error")
                .to_string()
        };
        let missing_key = bad(
            OBJECTS,
            "env: [{name: X, valueFrom: {configMapKeyRef: {name: settings, key: nope}}}]",
        );
        assert_eq!(
            missing_key,
            "document 3 (Pod \"demo\"): spec.containers[0].env[0].valueFrom.configMapKeyRef.key: \
             \"nope\" not found in configmap \"settings\""
        );
        let missing_secret = bad(OBJECTS, "envFrom: [{secretRef: {name: other}}]");
        assert_eq!(
            missing_secret,
            "document 3 (Pod \"demo\"): spec.containers[0].envFrom[0].secretRef: secret \"other\" \
             not found in namespace \"default\" of this manifest"
        );
        let cases = [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'a b': x}",
                "document 1 (ConfigMap \"c\"): data[a b]: invalid value \"a b\": must consist of \
                 alphanumeric characters, '-', '_' or '.' (at most 253, not '.' or '..')",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndat: {a: x}",
                "document 1 (ConfigMap \"c\"): dat: unknown field",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\ndata: {a: x}",
                "document 1 (ConfigMap): metadata.name: required value",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n\
                 apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}",
                "document 2 (ConfigMap \"c\"): metadata.name: duplicate configmap \"c\"",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\nbinaryData: {a: AA==}",
                "document 1 (ConfigMap \"c\"): binaryData.a: duplicate of a key in data",
            ),
            (
                "apiVersion: v1\nkind: Service\nmetadata: {name: web}",
                "document 1: kind: unknown kind \"Service\": wasmpod runs v1 Pods, ConfigMaps and \
                 Secrets (and Lists of them)",
            ),
        ];
        for (objects, want) in cases {
            assert_eq!(bad(objects, ""), want, "{objects}");
        }
        // Secret data is base64, and a value must be text to be an environment variable.
        let not_base64 = bad(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '%%%'}",
            "",
        );
        assert!(
            not_base64.starts_with("document 1 (Secret \"s\"): data.k: "),
            "{not_base64}"
        );
        let binary = bad(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: /w==}",
            "env: [{name: K, valueFrom: {secretKeyRef: {name: s, key: k}}}]",
        );
        assert_eq!(
            binary,
            "document 2 (Pod \"demo\"): spec.containers[0].env[0].valueFrom.secretKeyRef: key \
             \"k\" of secret \"s\" is not UTF-8 text: it cannot be an environment variable"
        );
    }

    #[test]
    fn a_pod_file_holds_one_pod() {
        let two = format!("{POD}---\n{}", POD.replace("demo", "other"));
        assert_eq!(manifest(&two).expect("two pods").pods.len(), 2);
        let e = crate::spec::parse_pod(&two, Path::new("/pods")).expect_err("two pods");
        assert_eq!(e.to_string(), "expected one Pod in the manifest, found 2");
        let same = format!("{POD}---\n{POD}");
        assert_eq!(
            manifest(&same).expect_err("duplicate").to_string(),
            "document 2 (Pod \"demo\"): metadata.name: duplicate pod \"demo\""
        );
    }

    /// The only pod's volumes, parsed from `objects` then a pod with `volumes_yaml` (a flow
    /// sequence) as its `spec.volumes`.
    fn volumes_of(
        objects: &str,
        volumes_yaml: &str,
    ) -> Result<Vec<crate::spec::VolumeSpec>, SpecError> {
        let pod = format!("{POD}  volumes: {volumes_yaml}\n");
        Ok(manifest(&format!("{objects}\n---\n{pod}"))?.pods[0]
            .volumes
            .clone())
    }

    fn files(volume: &crate::spec::VolumeSpec) -> (Vec<(String, Vec<u8>, u32)>, bool) {
        match &volume.source {
            crate::spec::VolumeSource::Projected { files, memory } => (
                files
                    .iter()
                    .map(|f| (f.path.display().to_string(), f.contents.clone(), f.mode))
                    .collect(),
                *memory,
            ),
            other => panic!("not projected: {other:?}"),
        }
    }

    #[test]
    fn config_map_and_secret_volumes_project_their_keys_or_items() {
        let volumes = volumes_of(
            OBJECTS,
            "[{name: all, configMap: {name: settings}}, \
             {name: some, configMap: {name: settings, defaultMode: 0400, items: [{key: mode, path: conf/mode.txt}, {key: level, path: lvl, mode: 0600}]}}, \
             {name: creds, secret: {secretName: creds}}, \
             {name: gone, configMap: {name: absent, optional: true}}, \
             {name: partly, secret: {secretName: creds, optional: true, items: [{key: nope, path: n}, {key: user, path: u}]}}]",
        )
        .expect("volumes");
        let (all, memory) = files(&volumes[0]);
        assert!(!memory, "a ConfigMap's volume is on disk");
        assert_eq!(
            all,
            vec![
                ("blob".into(), vec![0, 1, 2], 0o644),
                ("level".into(), b"3".to_vec(), 0o644),
                ("mode".into(), b"fast".to_vec(), 0o644),
            ]
        );
        assert_eq!(
            files(&volumes[1]).0,
            vec![
                ("conf/mode.txt".into(), b"fast".to_vec(), 0o400),
                ("lvl".into(), b"3".to_vec(), 0o600),
            ]
        );
        let (creds, memory) = files(&volumes[2]);
        assert!(memory, "a Secret's volume is on a tmpfs");
        assert_eq!(
            creds,
            vec![
                ("token".into(), b"s3cr3t".to_vec(), 0o644),
                ("user".into(), b"admin".to_vec(), 0o644),
            ]
        );
        assert_eq!(files(&volumes[3]).0, vec![]);
        assert_eq!(
            files(&volumes[4]).0,
            vec![("u".into(), b"admin".to_vec(), 0o644)]
        );
        // A secret's contents never show in a debug print of the pod.
        let debug = format!("{volumes:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("115, 51"),
            "{debug}"
        );
    }

    #[test]
    fn volume_errors_name_the_field() {
        let p = "document 3 (Pod \"demo\"): spec.volumes[0]";
        let cases = [
            (
                "[{name: v, configMap: {name: absent}}]",
                format!(
                    "{p}.configMap: configmap \"absent\" not found in namespace \"default\" of this manifest"
                ),
            ),
            (
                "[{name: v, secret: {}}]",
                format!("{p}.secret.secretName: required value"),
            ),
            (
                "[{name: v, configMap: {name: settings, items: [{key: nope, path: x}]}}]",
                format!("{p}.configMap.items[0].key: \"nope\" not found in configmap \"settings\""),
            ),
            (
                "[{name: v, configMap: {name: settings, items: [{key: mode, path: ../x}]}}]",
                format!(
                    "{p}.configMap.items[0].path: invalid value \"../x\": must not contain '..'"
                ),
            ),
            (
                "[{name: v, configMap: {name: settings, items: [{key: mode, path: /etc/x}]}}]",
                format!(
                    "{p}.configMap.items[0].path: invalid value \"/etc/x\": must be a relative path"
                ),
            ),
            (
                "[{name: v, configMap: {name: settings, items: [{key: mode, path: a}, {key: level, path: a/b}]}}]",
                format!("{p}.configMap.items[1].path: \"a/b\" conflicts with another item's path"),
            ),
            (
                "[{name: v, configMap: {name: settings, defaultMode: 01000}}]",
                format!(
                    "{p}.configMap.defaultMode: invalid value 512: must be a number between 0 and 0777 (octal), both inclusive"
                ),
            ),
            (
                "[{name: v, configMap: {name: settings}, emptyDir: {}}]",
                format!("{p}: may not specify more than one volume source"),
            ),
        ];
        for (volumes, want) in cases {
            let got = volumes_of(OBJECTS, volumes).expect_err(volumes).to_string();
            assert_eq!(got, want, "{volumes}");
        }
    }
}
