//! Kubelet's handlers, shared by probes and lifecycle hooks: `exec`, `httpGet`, `tcpSocket`,
//! `grpc` and `sleep`, validated as the API server validates them.

use std::time::Duration;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::expand;
use super::field_path::FieldPath;
use super::policy::non_empty;
use crate::spec::{Handler, HttpGet, SpecError};

/// What a handler may refer to in its container: its named ports and its environment.
pub(super) struct HandlerContext<'a> {
    /// `ports[].name` → `containerPort`.
    pub ports: &'a [(String, u16)],
    /// The container's environment (`$(VAR)` in an exec command is expanded against it).
    pub env: &'a [(String, String)],
}

/// The one handler of a probe or hook at `p`, among those `set` (each `Some` when its field
/// is set): exactly one must be.
pub(super) fn one_handler(
    set: Vec<Option<Result<Handler, SpecError>>>,
    p: &FieldPath,
) -> Result<Handler, SpecError> {
    let mut set = set.into_iter().flatten();
    match (set.next(), set.next()) {
        (None, _) => Err(p.error("must specify a handler type")),
        (Some(handler), None) => handler,
        (Some(_), Some(_)) => Err(p.error("may not specify more than 1 handler type")),
    }
}

pub(super) fn convert_exec(
    exec: core::ExecAction,
    p: &FieldPath,
    context: &HandlerContext<'_>,
) -> Result<Handler, SpecError> {
    let core::ExecAction { command } = exec;
    match command {
        Some(command) if !command.is_empty() => Ok(Handler::Exec {
            argv: command.iter().map(|arg| expand(arg, context.env)).collect(),
        }),
        _ => Err(p.field("command").required()),
    }
}

pub(super) fn convert_http_get(
    get: core::HTTPGetAction,
    p: &FieldPath,
    context: &HandlerContext<'_>,
) -> Result<Handler, SpecError> {
    let core::HTTPGetAction {
        host,
        http_headers,
        path,
        port,
        protocol,
        scheme,
    } = get;
    check_host(host, &p.field("host"))?;
    if let Some(other) = non_empty(protocol).filter(|p| p != "HTTP/1.1") {
        return Err(p.field("protocol").unsupported_value(&other, &["HTTP/1.1"]));
    }
    let https = match non_empty(scheme).as_deref() {
        None | Some("HTTP") => false,
        Some("HTTPS") => true,
        Some(other) => {
            return Err(p
                .field("scheme")
                .unsupported_value(other, &["HTTP", "HTTPS"]));
        }
    };
    let path = non_empty(path).unwrap_or_else(|| "/".to_owned());
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(p.field("path").error(format!(
            "invalid value {path:?}: must be an absolute URL path"
        )));
    }
    let mut headers = Vec::new();
    for (i, header) in http_headers.unwrap_or_default().into_iter().enumerate() {
        let core::HTTPHeader { name, value } = header;
        let hp = p.field("httpHeaders").index(i);
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(hp
                .field("name")
                .error(format!("invalid value {name:?}: not an HTTP header name")));
        }
        if http::HeaderValue::from_str(&value).is_err() {
            return Err(hp
                .field("value")
                .error(format!("invalid value {value:?}: not an HTTP header value")));
        }
        headers.push((name, value));
    }
    Ok(Handler::HttpGet(HttpGet {
        port: resolve_port(port, &p.field("port"), context)?,
        path,
        https,
        headers,
    }))
}

pub(super) fn convert_tcp_socket(
    tcp: core::TCPSocketAction,
    p: &FieldPath,
    context: &HandlerContext<'_>,
) -> Result<Handler, SpecError> {
    let core::TCPSocketAction { host, port } = tcp;
    check_host(host, &p.field("host"))?;
    Ok(Handler::TcpSocket {
        port: resolve_port(port, &p.field("port"), context)?,
    })
}

pub(super) fn convert_grpc(grpc: core::GRPCAction, p: &FieldPath) -> Result<Handler, SpecError> {
    let core::GRPCAction {
        mode,
        port,
        service,
    } = grpc;
    match non_empty(mode).as_deref() {
        None | Some("Plaintext") => {}
        Some("TLS") => return Err(p.field("mode").error("TLS is not supported by wasmpod")),
        Some(other) => {
            return Err(p
                .field("mode")
                .unsupported_value(other, &["Plaintext", "TLS"]));
        }
    }
    Ok(Handler::Grpc {
        port: port_number(port, &p.field("port"))?,
        service: service.unwrap_or_default(),
    })
}

/// `host`: kubelet would probe another machine; here only the pod itself can be reached.
fn check_host(host: Option<String>, p: &FieldPath) -> Result<(), SpecError> {
    match non_empty(host).as_deref() {
        None | Some("localhost" | "127.0.0.1" | "::1") => Ok(()),
        Some(other) => Err(p.error(format!(
            "invalid value {other:?}: wasmpod reaches the pod itself (leave it unset)"
        ))),
    }
}

/// A probe's `port`: a number, or the name of one of the container's ports.
fn resolve_port(
    port: IntOrString,
    p: &FieldPath,
    context: &HandlerContext<'_>,
) -> Result<u16, SpecError> {
    match port {
        IntOrString::Int(number) => port_number(number, p),
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(number) => port_number(number, p),
            Err(_) => context
                .ports
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, number)| *number)
                .ok_or_else(|| {
                    p.error(format!(
                        "invalid value {name:?}: no container port of that name"
                    ))
                }),
        },
    }
}

fn port_number(number: i32, p: &FieldPath) -> Result<u16, SpecError> {
    u16::try_from(number)
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| p.error("must be between 1 and 65535, inclusive"))
}

/// `sleep`: a pause of `seconds`.
pub(super) fn convert_sleep(sleep: core::SleepAction, p: &FieldPath) -> Result<Handler, SpecError> {
    let core::SleepAction { seconds } = sleep;
    let seconds =
        u64::try_from(seconds).map_err(|_| p.field("seconds").error("must be non-negative"))?;
    Ok(Handler::Sleep(Duration::from_secs(seconds)))
}
