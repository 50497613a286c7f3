//! `metadata`: the pod's name, namespace, uid, labels and annotations.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::field_path::FieldPath;
use super::names::{check_dns_label, check_dns_subdomain, check_uid, generate_uid, random_suffix};
use super::policy::{SCHEDULER, ignore_fields, non_empty, nonempty};
use crate::spec::SpecError;

/// The converted `metadata`.
#[derive(Debug)]
pub(super) struct Meta {
    /// `name`, or `generateName` plus a random suffix.
    pub(super) name: String,
    /// `namespace`, `default` when unset.
    pub(super) namespace: String,
    /// `uid`, generated when unset.
    pub(super) uid: String,
    /// `labels`.
    pub(super) labels: BTreeMap<String, String>,
    /// `annotations`.
    pub(super) annotations: BTreeMap<String, String>,
}

/// Converts `metadata`, generating the name (from `generateName`) and uid when missing.
pub(super) fn convert_metadata(metadata: ObjectMeta) -> Result<Meta, SpecError> {
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
    let uid = non_empty(uid).unwrap_or_else(generate_uid);
    check_uid(&uid, &p.field("uid"))?;
    Ok(Meta {
        name,
        namespace,
        uid,
        labels: labels.unwrap_or_default(),
        annotations: annotations.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use crate::spec::parse::test_support::{err, ok, pod, pod_with_metadata};

    #[test]
    fn metadata_names() {
        assert_eq!(
            err(&pod_with_metadata("{}")),
            "metadata.name: required value"
        );
        let e = err(&pod_with_metadata("{name: Demo}"));
        assert!(
            e.starts_with("metadata.name: invalid value \"Demo\": must be a dns-1123 subdomain"),
            "{e}"
        );
        let e = err(&pod_with_metadata("{name: demo, namespace: a.b}"));
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

    /// The uid names the pod's directory: it can never climb out of the state directory.
    #[test]
    fn metadata_uid_is_one_plain_path_component() {
        let uuid = "0b5f8d2e-7c1a-4e0f-9a57-3f2b8c6d1e4a";
        let spec = ok(&pod_with_metadata(&format!("{{name: demo, uid: {uuid}}}")));
        assert_eq!(spec.uid, uuid);
        for bad in ["../../etc", "/tmp", "a/b", "..", "x y"] {
            let e = err(&pod_with_metadata(&format!("{{name: demo, uid: {bad:?}}}")));
            assert!(
                e.starts_with(&format!("metadata.uid: invalid value {bad:?}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn generate_name_and_long_names() {
        let spec = ok(&pod_with_metadata("{generateName: job-}"));
        assert_eq!(spec.name.len(), 9);
        assert!(spec.name.starts_with("job-"), "{}", spec.name);
        assert_eq!(spec.hostname, spec.name);

        let long = format!("{}-{}.x", "a".repeat(62), "b".repeat(10));
        let spec = ok(&pod_with_metadata(&format!("{{name: {long}}}")));
        assert_eq!(spec.name, long);
        assert_eq!(spec.hostname, "a".repeat(62));
    }
}
