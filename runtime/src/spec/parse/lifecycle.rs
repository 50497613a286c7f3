//! A container's `lifecycle`: only `preStop.exec`, and only on app containers.

use k8s_openapi::api::core::v1 as core;

use super::container::ContainerKind;
use super::env::expand;
use super::field_path::FieldPath;
use super::policy::reject_fields;
use crate::spec::{PreStop, SpecError};
use std::path::PathBuf;
use std::time::Duration;

/// `lifecycle`: the `preStop` hook, if any. `exec.command[0]` is resolved by `resolve` (as
/// `image` is) and the command is `$(VAR)`-expanded against `env`.
pub(super) fn convert_lifecycle(
    lifecycle: Option<core::Lifecycle>,
    p: &FieldPath,
    kind: ContainerKind,
    resolve: impl Fn(String, &FieldPath) -> Result<PathBuf, SpecError>,
    env: &[(String, String)],
) -> Result<Option<PreStop>, SpecError> {
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
            ("tcpSocket", tcp_socket.is_some()),
        ],
    )?;
    if let Some(core::SleepAction { seconds }) = sleep {
        if exec.is_some() {
            return Err(p.error("may not specify more than one handler type"));
        }
        let seconds = u64::try_from(seconds)
            .map_err(|_| p.field("sleep.seconds").error("must be non-negative"))?;
        return Ok(Some(PreStop::Sleep(Duration::from_secs(seconds))));
    }
    let core::ExecAction { command } = exec.ok_or_else(|| p.field("exec").required())?;
    let command = match command {
        Some(command) if !command.is_empty() => command,
        _ => return Err(p.field("exec.command").required()),
    };
    let argv: Vec<String> = command.iter().map(|arg| expand(arg, env)).collect();
    let module = resolve(argv[0].clone(), &p.field("exec.command[0]"))?;
    Ok(Some(PreStop::Exec { module, argv }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::spec::PreStop;
    use crate::spec::parse::test_support::{assert_errors, container, ok, pod_with_container};

    #[test]
    fn pre_stop_exec_resolves_its_module_like_an_image() {
        let spec = ok(&pod_with_container(
            "env: [{name: MODE, value: now}]\nlifecycle: {preStop: {exec: {command: [hooks/stop.wasm, --$(MODE)]}}}",
        ));
        let Some(PreStop::Exec { module, argv }) = &container(&spec).pre_stop else {
            panic!("exec hook expected: {:?}", container(&spec).pre_stop);
        };
        assert!(module.ends_with(Path::new("hooks/stop.wasm")), "{module:?}");
        assert!(
            module.is_absolute() || module.starts_with("/"),
            "{module:?}"
        );
        assert_eq!(argv, &["hooks/stop.wasm", "--now"]);
    }

    #[test]
    fn pre_stop_sleep() {
        let spec = ok(&pod_with_container(
            "lifecycle: {preStop: {sleep: {seconds: 5}}}",
        ));
        assert_eq!(
            container(&spec).pre_stop,
            Some(PreStop::Sleep(Duration::from_secs(5)))
        );
    }

    #[test]
    fn pre_stop_errors() {
        assert_errors(&[
            (
                pod_with_container("lifecycle: {preStop: {}}"),
                "spec.containers[0].lifecycle.preStop.exec: required value",
            ),
            (
                pod_with_container("lifecycle: {preStop: {exec: {}}}"),
                "spec.containers[0].lifecycle.preStop.exec.command: required value",
            ),
            (
                pod_with_container("lifecycle: {preStop: {httpGet: {port: 80}}}"),
                "spec.containers[0].lifecycle.preStop.httpGet: not supported by wasmpod",
            ),
        ]);
    }
}
