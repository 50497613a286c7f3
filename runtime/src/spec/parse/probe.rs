//! A container's `startupProbe`, `livenessProbe` and `readinessProbe`, validated as the API
//! server validates them and with its defaults filled in.

use std::time::Duration;

use k8s_openapi::api::core::v1 as core;

use super::container::ContainerKind;
use super::field_path::FieldPath;
use super::handler::{
    HandlerContext, convert_exec, convert_grpc, convert_http_get, convert_tcp_socket, one_handler,
};
use crate::spec::{Probe, Probes, SpecError};

/// The three probes of a container at `p`.
pub(super) fn convert_probes(
    startup: Option<core::Probe>,
    liveness: Option<core::Probe>,
    readiness: Option<core::Probe>,
    p: &FieldPath,
    kind: ContainerKind,
    context: &HandlerContext<'_>,
) -> Result<Probes, SpecError> {
    let probes = [
        ("startupProbe", &startup),
        ("livenessProbe", &liveness),
        ("readinessProbe", &readiness),
    ];
    if kind == ContainerKind::Init
        && let Some((field, _)) = probes.iter().find(|(_, probe)| probe.is_some())
    {
        return Err(p
            .field(field)
            .error("may not be set for init containers without restartPolicy=Always"));
    }
    let convert = |probe: Option<core::Probe>, field: &str, which: Which| {
        probe
            .map(|probe| convert_probe(probe, &p.field(field), which, context))
            .transpose()
    };
    Ok(Probes {
        startup: convert(startup, "startupProbe", Which::Startup)?,
        liveness: convert(liveness, "livenessProbe", Which::Liveness)?,
        readiness: convert(readiness, "readinessProbe", Which::Readiness)?,
    })
}

/// Which probe is being converted: their rules differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Startup,
    Liveness,
    Readiness,
}

fn convert_probe(
    probe: core::Probe,
    p: &FieldPath,
    which: Which,
    context: &HandlerContext<'_>,
) -> Result<Probe, SpecError> {
    let core::Probe {
        exec,
        failure_threshold,
        grpc,
        http_get,
        initial_delay_seconds,
        period_seconds,
        success_threshold,
        tcp_socket,
        termination_grace_period_seconds,
        timeout_seconds,
    } = probe;
    let action = one_handler(
        vec![
            exec.map(|exec| convert_exec(exec, &p.field("exec"), context)),
            http_get.map(|get| convert_http_get(get, &p.field("httpGet"), context)),
            tcp_socket.map(|tcp| convert_tcp_socket(tcp, &p.field("tcpSocket"), context)),
            grpc.map(|grpc| convert_grpc(grpc, &p.field("grpc"))),
        ],
        p,
    )?;
    let seconds = |value: Option<i32>, field: &str, default: u64, min: i32| {
        match value {
            // The API server's defaulting turns an unset (or zero) field into the default.
            None | Some(0) => Ok(default),
            Some(v) if v < min => Err(p
                .field(field)
                .error(format!("must be greater than or equal to {min}"))),
            Some(v) => Ok(u64::from(v.unsigned_abs())),
        }
    };
    let success_threshold = seconds(success_threshold, "successThreshold", 1, 1)?;
    if which != Which::Readiness && success_threshold != 1 {
        return Err(p.field("successThreshold").error("must be 1"));
    }
    let termination_grace_period = match termination_grace_period_seconds {
        None => None,
        Some(_) if which == Which::Readiness => {
            return Err(p
                .field("terminationGracePeriodSeconds")
                .error("must not be set for readinessProbes"));
        }
        Some(seconds) => Some(Duration::from_secs(
            u64::try_from(seconds)
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| {
                    p.field("terminationGracePeriodSeconds")
                        .error("must be greater than 0")
                })?,
        )),
    };
    let initial_delay = match initial_delay_seconds {
        None => 0,
        Some(v) => u64::try_from(v).map_err(|_| {
            p.field("initialDelaySeconds")
                .error("must be greater than or equal to 0")
        })?,
    };
    Ok(Probe {
        action,
        initial_delay: Duration::from_secs(initial_delay),
        period: Duration::from_secs(seconds(period_seconds, "periodSeconds", 10, 1)?),
        timeout: Duration::from_secs(seconds(timeout_seconds, "timeoutSeconds", 1, 1)?),
        success_threshold: u32::try_from(success_threshold).unwrap_or(u32::MAX),
        failure_threshold: u32::try_from(seconds(failure_threshold, "failureThreshold", 3, 1)?)
            .unwrap_or(u32::MAX),
        termination_grace_period,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::spec::parse::test_support::{assert_errors, container, ok, pod_with_container};
    use crate::spec::{Handler, HttpGet, Probe};

    fn probes(yaml: &str) -> crate::spec::Probes {
        container(&ok(&pod_with_container(yaml))).probes.clone()
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let probes = probes("livenessProbe: {tcpSocket: {port: 8080}}");
        assert_eq!(
            probes.liveness,
            Some(Probe {
                action: Handler::TcpSocket { port: 8080 },
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
                termination_grace_period: None,
            })
        );
        assert_eq!(probes.startup, None);
        assert_eq!(probes.readiness, None);
    }

    #[test]
    fn every_kind_and_field() {
        let probes = probes(
            "env: [{name: FILE, value: /tmp/healthy}]
ports: [{name: web, containerPort: 8080}]
startupProbe: {exec: {command: [cat, $(FILE)]}, periodSeconds: 1, failureThreshold: 30, terminationGracePeriodSeconds: 5}
livenessProbe: {httpGet: {path: /healthz, port: web, scheme: HTTPS, httpHeaders: [{name: X-Probe, value: yes}]}, initialDelaySeconds: 3, timeoutSeconds: 2}
readinessProbe: {grpc: {port: 9090, service: ready}, successThreshold: 2}",
        );
        assert_eq!(
            probes.startup.as_ref().map(|p| (
                &p.action,
                p.period,
                p.failure_threshold,
                p.termination_grace_period
            )),
            Some((
                &Handler::Exec {
                    argv: vec!["cat".into(), "/tmp/healthy".into()]
                },
                Duration::from_secs(1),
                30,
                Some(Duration::from_secs(5))
            ))
        );
        let liveness = probes.liveness.expect("liveness");
        assert_eq!(
            liveness.action,
            Handler::HttpGet(HttpGet {
                port: 8080,
                path: "/healthz".into(),
                https: true,
                headers: vec![("X-Probe".into(), "yes".into())],
            })
        );
        assert_eq!(liveness.initial_delay, Duration::from_secs(3));
        assert_eq!(liveness.timeout, Duration::from_secs(2));
        let readiness = probes.readiness.expect("readiness");
        assert_eq!(
            readiness.action,
            Handler::Grpc {
                port: 9090,
                service: "ready".into()
            }
        );
        assert_eq!(readiness.success_threshold, 2);
        let default_path = self::probes("readinessProbe: {httpGet: {port: '80'}}");
        assert!(matches!(
            default_path.readiness.map(|p| p.action),
            Some(Handler::HttpGet(HttpGet { port: 80, ref path, https: false, .. })) if path == "/"
        ));
    }

    #[test]
    fn errors_name_the_field() {
        let c = "spec.containers[0]";
        assert_errors(&[
            (
                pod_with_container("livenessProbe: {periodSeconds: 5}"),
                &format!("{c}.livenessProbe: must specify a handler type"),
            ),
            (
                pod_with_container("livenessProbe: {exec: {command: [x]}, tcpSocket: {port: 1}}"),
                &format!("{c}.livenessProbe: may not specify more than 1 handler type"),
            ),
            (
                pod_with_container("livenessProbe: {exec: {command: []}}"),
                &format!("{c}.livenessProbe.exec.command: required value"),
            ),
            (
                pod_with_container("livenessProbe: {tcpSocket: {port: 1}, successThreshold: 2}"),
                &format!("{c}.livenessProbe.successThreshold: must be 1"),
            ),
            (
                pod_with_container("startupProbe: {tcpSocket: {port: 1}, successThreshold: 3}"),
                &format!("{c}.startupProbe.successThreshold: must be 1"),
            ),
            (
                pod_with_container(
                    "readinessProbe: {tcpSocket: {port: 1}, terminationGracePeriodSeconds: 3}",
                ),
                &format!(
                    "{c}.readinessProbe.terminationGracePeriodSeconds: must not be set for readinessProbes"
                ),
            ),
            (
                pod_with_container("readinessProbe: {tcpSocket: {port: 1}, periodSeconds: -1}"),
                &format!("{c}.readinessProbe.periodSeconds: must be greater than or equal to 1"),
            ),
            (
                pod_with_container(
                    "readinessProbe: {tcpSocket: {port: 1}, initialDelaySeconds: -1}",
                ),
                &format!(
                    "{c}.readinessProbe.initialDelaySeconds: must be greater than or equal to 0"
                ),
            ),
            (
                pod_with_container("readinessProbe: {tcpSocket: {port: http}}"),
                &format!(
                    "{c}.readinessProbe.tcpSocket.port: invalid value \"http\": no container port of that name"
                ),
            ),
            (
                pod_with_container("readinessProbe: {tcpSocket: {port: 70000}}"),
                &format!(
                    "{c}.readinessProbe.tcpSocket.port: must be between 1 and 65535, inclusive"
                ),
            ),
            (
                pod_with_container("readinessProbe: {tcpSocket: {port: 80, host: example.com}}"),
                &format!(
                    "{c}.readinessProbe.tcpSocket.host: invalid value \"example.com\": wasmpod reaches the pod itself (leave it unset)"
                ),
            ),
            (
                pod_with_container("readinessProbe: {httpGet: {port: 80, scheme: FTP}}"),
                &format!(
                    "{c}.readinessProbe.httpGet.scheme: unsupported value \"FTP\": supported values are \"HTTP\", \"HTTPS\""
                ),
            ),
            (
                pod_with_container(
                    "readinessProbe: {httpGet: {port: 80, httpHeaders: [{name: 'a b', value: x}]}}",
                ),
                &format!(
                    "{c}.readinessProbe.httpGet.httpHeaders[0].name: invalid value \"a b\": not an HTTP header name"
                ),
            ),
        ]);
    }
}
