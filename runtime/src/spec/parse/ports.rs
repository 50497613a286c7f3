//! A container's `ports`: informational container ports; host ports cannot be honoured.

use k8s_openapi::api::core::v1 as core;

use super::field_path::FieldPath;
use super::policy::{
    NOT_APPLICABLE, convert_list, ignore_fields, non_empty, nonempty_str, reject_fields,
};
use crate::spec::SpecError;

/// `ports[].containerPort`.
pub(super) fn convert_ports(
    ports: Vec<core::ContainerPort>,
    p: &FieldPath,
) -> Result<Vec<u16>, SpecError> {
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
            return Err(p
                .field("protocol")
                .unsupported_value(other, &["TCP", "UDP", "SCTP"]));
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

#[cfg(test)]
mod tests {
    use crate::spec::parse::test_support::{container, err, ok, pod_with_container};

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
}
