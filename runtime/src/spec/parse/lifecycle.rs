//! A container's `lifecycle`: its `postStart` and `preStop` hooks (`exec`, `httpGet`,
//! `sleep`), on app containers and native sidecars.

use k8s_openapi::api::core::v1 as core;

use super::container::ContainerKind;
use super::field_path::FieldPath;
use super::handler::{HandlerContext, convert_exec, convert_http_get, convert_sleep, one_handler};
use super::policy::reject_fields;
use crate::spec::{Handler, SpecError};

/// `lifecycle`: the `postStart` and `preStop` hooks, if any.
pub(super) fn convert_lifecycle(
    lifecycle: Option<core::Lifecycle>,
    p: &FieldPath,
    kind: ContainerKind,
    context: &HandlerContext<'_>,
) -> Result<(Option<Handler>, Option<Handler>), SpecError> {
    let Some(core::Lifecycle {
        post_start,
        pre_stop,
        stop_signal,
    }) = lifecycle
    else {
        return Ok((None, None));
    };
    reject_fields(p, &[("stopSignal", stop_signal.is_some())])?;
    let hook = |handler: Option<core::LifecycleHandler>, field: &str| {
        let Some(handler) = handler else {
            return Ok(None);
        };
        let p = p.field(field);
        if kind == ContainerKind::Init {
            return Err(p.error("may not be set for init containers"));
        }
        convert_hook(handler, &p, context).map(Some)
    };
    Ok((hook(post_start, "postStart")?, hook(pre_stop, "preStop")?))
}

/// One hook: exactly one of `exec`, `httpGet` and `sleep` (`tcpSocket` is deprecated and
/// kubelet does not run it).
fn convert_hook(
    handler: core::LifecycleHandler,
    p: &FieldPath,
    context: &HandlerContext<'_>,
) -> Result<Handler, SpecError> {
    let core::LifecycleHandler {
        exec,
        http_get,
        sleep,
        tcp_socket,
    } = handler;
    reject_fields(p, &[("tcpSocket", tcp_socket.is_some())])?;
    one_handler(
        vec![
            exec.map(|exec| convert_exec(exec, &p.field("exec"), context)),
            http_get.map(|get| convert_http_get(get, &p.field("httpGet"), context)),
            sleep.map(|sleep| convert_sleep(sleep, &p.field("sleep"))),
        ],
        p,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::spec::parse::test_support::{assert_errors, container, ok, pod_with_container};
    use crate::spec::{Handler, HttpGet};

    #[test]
    fn exec_hooks_run_their_command_in_the_container() {
        let spec = ok(&pod_with_container(
            "env: [{name: MODE, value: now}]\nlifecycle: {preStop: {exec: {command: [/hooks/stop.wasm, --$(MODE)]}}, postStart: {exec: {command: [sleep, '1']}}}",
        ));
        assert_eq!(
            container(&spec).pre_stop,
            Some(Handler::Exec {
                argv: vec!["/hooks/stop.wasm".into(), "--now".into()]
            })
        );
        assert_eq!(
            container(&spec).post_start,
            Some(Handler::Exec {
                argv: vec!["sleep".into(), "1".into()]
            })
        );
    }

    #[test]
    fn sleep_and_http_get_hooks() {
        let spec = ok(&pod_with_container(
            "ports: [{name: admin, containerPort: 9000}]\nlifecycle: {preStop: {httpGet: {port: admin, path: /quit}}, postStart: {sleep: {seconds: 5}}}",
        ));
        assert_eq!(
            container(&spec).post_start,
            Some(Handler::Sleep(Duration::from_secs(5)))
        );
        assert_eq!(
            container(&spec).pre_stop,
            Some(Handler::HttpGet(HttpGet {
                port: 9000,
                path: "/quit".into(),
                https: false,
                headers: Vec::new(),
            }))
        );
    }

    #[test]
    fn hook_errors() {
        let c = "spec.containers[0].lifecycle";
        assert_errors(&[
            (
                pod_with_container("lifecycle: {preStop: {}}"),
                &format!("{c}.preStop: must specify a handler type"),
            ),
            (
                pod_with_container("lifecycle: {preStop: {exec: {}}}"),
                &format!("{c}.preStop.exec.command: required value"),
            ),
            (
                pod_with_container(
                    "lifecycle: {postStart: {exec: {command: [x]}, sleep: {seconds: 1}}}",
                ),
                &format!("{c}.postStart: may not specify more than 1 handler type"),
            ),
            (
                pod_with_container("lifecycle: {postStart: {sleep: {seconds: -1}}}"),
                &format!("{c}.postStart.sleep.seconds: must be non-negative"),
            ),
            (
                pod_with_container("lifecycle: {preStop: {tcpSocket: {port: 80}}}"),
                &format!("{c}.preStop.tcpSocket: not supported by wasmpod"),
            ),
            (
                pod_with_container("lifecycle: {preStop: {httpGet: {port: web}}}"),
                &format!(
                    "{c}.preStop.httpGet.port: invalid value \"web\": no container port of that name"
                ),
            ),
        ]);
    }
}
