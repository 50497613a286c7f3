//! The pod as a whole: `status`, `metadata` and every field of `spec`.

use std::collections::HashSet;
use std::path::Path;

use k8s_openapi::api::core::v1 as core;

use super::container::{ContainerKind, PodContext, convert_containers};
use super::field_path::FieldPath;
use super::metadata::{Meta, convert_metadata};
use super::objects::Objects;
use super::policy::{
    NOT_APPLICABLE, SCHEDULER, ignore_fields, is_true, nonempty, nonempty_map, reject_fields,
};
use super::security::check_pod_security_context;
use super::settings::{
    active_deadline, check_os, convert_restart_policy, grace_period, pod_hostname,
};
use super::volume::{Sources, convert_volumes};
use crate::spec::{PodSpec, SpecError};

/// Converts the whole pod.
pub(super) fn convert_pod(
    pod: core::Pod,
    base_dir: &Path,
    objects: &Objects,
) -> Result<PodSpec, SpecError> {
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
    convert_spec(spec, meta, base_dir, objects)
}

/// Converts `spec` with the already converted metadata.
fn convert_spec(
    spec: core::PodSpec,
    meta: Meta,
    base_dir: &Path,
    objects: &Objects,
) -> Result<PodSpec, SpecError> {
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

    let sources = Sources {
        objects,
        namespace: &meta.namespace,
    };
    let volumes = convert_volumes(volumes.unwrap_or_default(), &p.field("volumes"), sources)?;
    let context = PodContext {
        meta: &meta,
        objects,
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

#[cfg(test)]
mod tests {
    use crate::spec::parse::test_support::{assert_errors, err, ok, pod, pod_with_spec};

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
    fn host_namespaces_are_unsupported() {
        for field in ["hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"] {
            assert_eq!(
                err(&pod_with_spec(&format!("{field}: true"))),
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
                err(&pod_with_spec(yaml)),
                format!("{path}: not supported by wasmpod")
            );
        }
    }
}
