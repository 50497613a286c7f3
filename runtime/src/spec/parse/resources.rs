//! A container's `resources`: memory and cpu requests and limits.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::field_path::FieldPath;
use super::policy::{NOT_APPLICABLE, nonempty, reject_fields};
use crate::spec::quantity::{parse_cpu_millis, parse_memory_bytes};
use crate::spec::{Resources, SpecError};

/// A parsed `requests` or `limits` map: memory in bytes, cpu in millicores, and the
/// quantities as written (for messages).
#[derive(Debug, Default)]
struct ResourceList {
    memory: Option<(u64, String)>,
    cpu: Option<(u64, String)>,
}

/// `resources`: memory and cpu requests and limits; a missing request defaults to the limit.
pub(super) fn convert_resources(
    resources: Option<core::ResourceRequirements>,
    p: &FieldPath,
) -> Result<Resources, SpecError> {
    let Some(core::ResourceRequirements {
        claims,
        limits,
        requests,
    }) = resources
    else {
        return Ok(Resources::default());
    };
    reject_fields(p, &[("claims", nonempty(&claims))])?;
    let limits = parse_resource_list(limits.unwrap_or_default(), &p.field("limits"))?;
    let requests = parse_resource_list(requests.unwrap_or_default(), &p.field("requests"))?;
    let requests_p = p.field("requests");
    check_request_within_limit(&requests.memory, &limits.memory, "memory", &requests_p)?;
    check_request_within_limit(&requests.cpu, &limits.cpu, "cpu", &requests_p)?;
    let value = |entry: &Option<(u64, String)>| entry.as_ref().map(|(v, _)| *v);
    Ok(Resources {
        memory_request: value(&requests.memory).or(value(&limits.memory)),
        memory_limit: value(&limits.memory),
        cpu_request: value(&requests.cpu).or(value(&limits.cpu)),
        cpu_limit: value(&limits.cpu),
    })
}

/// Parses one `requests`/`limits` map.
fn parse_resource_list(
    list: BTreeMap<String, Quantity>,
    p: &FieldPath,
) -> Result<ResourceList, SpecError> {
    let mut parsed = ResourceList::default();
    for (name, Quantity(quantity)) in list {
        let p = p.key(&name);
        let parse = match name.as_str() {
            "memory" => parse_memory_bytes,
            "cpu" => parse_cpu_millis,
            "ephemeral-storage" => {
                parse_memory_bytes(&quantity).map_err(|e| p.error(e))?;
                tracing::debug!(field = %p, "{NOT_APPLICABLE}");
                continue;
            }
            _ => return Err(p.unsupported()),
        };
        let value = parse(&quantity).map_err(|e| p.error(e))?;
        let slot = if name == "memory" {
            &mut parsed.memory
        } else {
            &mut parsed.cpu
        };
        *slot = Some((value, quantity));
    }
    Ok(parsed)
}

/// A request may not exceed its limit.
fn check_request_within_limit(
    request: &Option<(u64, String)>,
    limit: &Option<(u64, String)>,
    resource: &str,
    p: &FieldPath,
) -> Result<(), SpecError> {
    match (request, limit) {
        (Some((request, _)), Some((limit, limit_text))) if request > limit => {
            Err(p.key(resource).error(format!(
                "must be less than or equal to {resource} limit of {limit_text}"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::Resources;
    use crate::spec::parse::test_support::{assert_errors, container, ok, pod_with_container};

    #[test]
    fn resources_default_requests_to_limits() {
        let resources = |yaml: &str| container(&ok(&pod_with_container(yaml))).resources;
        assert_eq!(
            resources("resources: {limits: {memory: 128Mi, cpu: '1'}}"),
            Resources {
                memory_request: Some(128 << 20),
                memory_limit: Some(128 << 20),
                cpu_request: Some(1000),
                cpu_limit: Some(1000),
            }
        );
        assert_eq!(
            resources("resources: {requests: {memory: 129M, cpu: 0.5}}"),
            Resources {
                memory_request: Some(129_000_000),
                memory_limit: None,
                cpu_request: Some(500),
                cpu_limit: None,
            }
        );
        assert_eq!(
            resources("resources: {requests: {cpu: 100m}, limits: {cpu: 2, memory: 1e9}}"),
            Resources {
                memory_request: Some(1_000_000_000),
                memory_limit: Some(1_000_000_000),
                cpu_request: Some(100),
                cpu_limit: Some(2000),
            }
        );
        assert_eq!(resources("resources: {}"), Resources::default());
    }

    #[test]
    fn resource_errors() {
        let with = |yaml: &str| pod_with_container(&format!("resources: {yaml}"));
        let p = "spec.containers[0].resources";
        assert_errors(&[
            (
                with("{requests: {memory: 256Mi}, limits: {memory: 128Mi}}"),
                &format!(
                    "{p}.requests.memory: must be less than or equal to memory limit of 128Mi"
                ),
            ),
            (
                with("{requests: {cpu: '2'}, limits: {cpu: 1500m}}"),
                &format!("{p}.requests.cpu: must be less than or equal to cpu limit of 1500m"),
            ),
            (
                with("{limits: {memory: 12Q}}"),
                &format!("{p}.limits.memory: invalid quantity \"12Q\""),
            ),
            (
                with("{requests: {cpu: -1}}"),
                &format!("{p}.requests.cpu: invalid quantity \"-1\": must not be negative"),
            ),
            (
                with("{limits: {ephemeral-storage: lots}}"),
                &format!("{p}.limits[ephemeral-storage]: invalid quantity \"lots\""),
            ),
        ]);
    }
}
