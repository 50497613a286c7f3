//! Containers, init and app: the image, argv, and the fields each container carries.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1 as core;

use super::env::{convert_env, expand};
use super::field_path::FieldPath;
use super::handler::HandlerContext;
use super::lifecycle::convert_lifecycle;
use super::metadata::Meta;
use super::mount::convert_mounts;
use super::names::check_element_name;
use super::objects::Objects;
use super::policy::{
    NOT_APPLICABLE, absolute_guest_path, convert_list, ignore_fields, is_true, non_empty, nonempty,
    reject_fields,
};
use super::ports::convert_ports;
use super::probe::convert_probes;
use super::resources::convert_resources;
use super::security::check_security_context;
use crate::spec::{ContainerSpec, SpecError};

/// What converting a container needs to know about its pod.
#[derive(Debug)]
pub(super) struct PodContext<'a> {
    /// The pod's converted metadata, for `valueFrom.fieldRef`.
    pub(super) meta: &'a Meta,
    /// The file's ConfigMaps and Secrets, for `valueFrom` and `envFrom`.
    pub(super) objects: &'a Objects,
    /// The manifest's directory, which relative images are resolved against.
    pub(super) base_dir: &'a Path,
    /// The names of `spec.volumes`, which mounts must name.
    pub(super) volumes: HashSet<&'a str>,
}

/// Whether a container is an init container or an app container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    /// `spec.initContainers`.
    Init,
    /// `spec.initContainers` with `restartPolicy: Always`: a native sidecar.
    Sidecar,
    /// `spec.containers`.
    App,
}

/// Converts a container list; `names` collects container names across init and app lists.
pub(super) fn convert_containers(
    containers: Vec<core::Container>,
    p: &FieldPath,
    kind: ContainerKind,
    context: &PodContext<'_>,
    names: &mut HashSet<String>,
) -> Result<Vec<ContainerSpec>, SpecError> {
    convert_list(containers, p, |container, p| {
        check_element_name(&container.name, p, names, "container name")?;
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
    let kind = match (kind, non_empty(restart_policy)) {
        (kind, None) => kind,
        (ContainerKind::Init, Some(policy)) if policy == "Always" => ContainerKind::Sidecar,
        (ContainerKind::Init, Some(other)) => {
            return Err(p
                .field("restartPolicy")
                .unsupported_value(&other, &["Always"]));
        }
        (_, Some(_)) => {
            return Err(p
                .field("restartPolicy")
                .error("may not be set for non-init containers"));
        }
    };
    reject_fields(
        p,
        &[
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
    let env = convert_env(
        env_from.unwrap_or_default(),
        env.unwrap_or_default(),
        p,
        context.meta,
        context.objects,
    )?;
    let argv = compose_argv(
        &module,
        &command.unwrap_or_default(),
        &args.unwrap_or_default(),
        &env,
    );
    let working_dir = non_empty(working_dir)
        .map(|dir| absolute_guest_path(dir, &p.field("workingDir")))
        .transpose()?;
    let ports = ports.unwrap_or_default();
    let named_ports: Vec<(String, u16)> = (ports.iter())
        .filter_map(|port| {
            let name = port.name.clone().filter(|n| !n.is_empty())?;
            Some((name, u16::try_from(port.container_port).ok()?))
        })
        .collect();
    let ports = convert_ports(ports, &p.field("ports"))?;
    let handlers = HandlerContext {
        ports: &named_ports,
        env: &env,
    };
    let probes = convert_probes(
        startup_probe,
        liveness_probe,
        readiness_probe,
        p,
        kind,
        &handlers,
    )?;
    let (post_start, pre_stop) =
        convert_lifecycle(lifecycle, &p.field("lifecycle"), kind, &handlers)?;
    Ok(ContainerSpec {
        probes,
        mounts: convert_mounts(
            volume_mounts.unwrap_or_default(),
            &p.field("volumeMounts"),
            &context.volumes,
        )?,
        resources: convert_resources(resources, &p.field("resources"))?,
        ports,
        post_start,
        pre_stop,
        sidecar: kind == ContainerKind::Sidecar,
        name,
        image,
        module,
        rootfs: None,
        read_only_rootfs: false,
        argv,
        env,
        working_dir,
    })
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::spec::parse::test_support::{container, err, ok, pod, pod_with_container, strings};

    #[test]
    fn unsupported_container_fields() {
        let cases = [
            ("stdin: true", "stdin"),
            ("stdinOnce: true", "stdinOnce"),
            ("tty: true", "tty"),
            (
                "volumeDevices: [{name: d, devicePath: /dev/xvda}]",
                "volumeDevices",
            ),
            ("lifecycle: {stopSignal: SIGUSR1}", "lifecycle.stopSignal"),
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
    fn an_init_container_that_always_restarts_is_a_sidecar() {
        let spec = ok(&pod("\
initContainers:
- {name: setup, image: one.wasm}
- name: proxy
  image: proxy.wasm
  restartPolicy: Always
  readinessProbe: {tcpSocket: {port: 9000}}
  lifecycle: {preStop: {sleep: {seconds: 1}}}
containers:
- {name: web, image: web.wasm}
"));
        let sidecars: Vec<bool> = spec.init_containers.iter().map(|c| c.sidecar).collect();
        assert_eq!(sidecars, [false, true]);
        assert!(!spec.containers[0].sidecar);
        assert!(spec.init_containers[1].probes.readiness.is_some());
        assert_eq!(
            err(&pod("\
initContainers:
- {name: setup, image: one.wasm, restartPolicy: Never}
containers:
- {name: web, image: web.wasm}
")),
            "spec.initContainers[0].restartPolicy: unsupported value \"Never\": supported values are \"Always\""
        );
        assert_eq!(
            err(&pod_with_container("restartPolicy: Always")),
            "spec.containers[0].restartPolicy: may not be set for non-init containers"
        );
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
}
