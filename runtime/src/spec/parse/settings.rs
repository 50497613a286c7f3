//! Pod-level settings: `os`, the hostname, `restartPolicy` and the pod's time limits.

use std::time::Duration;

use k8s_openapi::api::core::v1 as core;

use super::field_path::FieldPath;
use super::names::{MAX_LABEL, check_dns_label, check_dns_subdomain};
use super::policy::non_empty;
use crate::spec::{RestartPolicy, SpecError};

/// `spec.os`: only `linux` (WASI guests see a POSIX-like system).
pub(super) fn check_os(os: core::PodOS, p: &FieldPath) -> Result<(), SpecError> {
    let core::PodOS { name } = os;
    if name == "linux" {
        Ok(())
    } else {
        Err(p
            .field("name")
            .error(format!("{name:?} not supported by wasmpod")))
    }
}

/// `spec.hostnameOverride`, else `spec.hostname`, else the pod name cut to a DNS label.
pub(super) fn pod_hostname(
    hostname: Option<String>,
    hostname_override: Option<String>,
    pod_name: &str,
    p: &FieldPath,
) -> Result<String, SpecError> {
    if let Some(name) = non_empty(hostname_override) {
        check_dns_subdomain(&name, &p.field("hostnameOverride"))?;
        return Ok(name);
    }
    if let Some(name) = non_empty(hostname) {
        check_dns_label(&name, &p.field("hostname"))?;
        return Ok(name);
    }
    // As the kubelet does: a pod name longer than a DNS label is truncated.
    let truncated = pod_name.get(..MAX_LABEL).unwrap_or(pod_name);
    Ok(truncated.trim_end_matches(['-', '.']).to_string())
}

/// `spec.restartPolicy`, `Always` when unset.
pub(super) fn convert_restart_policy(
    policy: Option<String>,
    p: &FieldPath,
) -> Result<RestartPolicy, SpecError> {
    match non_empty(policy).as_deref() {
        None | Some("Always") => Ok(RestartPolicy::Always),
        Some("OnFailure") => Ok(RestartPolicy::OnFailure),
        Some("Never") => Ok(RestartPolicy::Never),
        Some(other) => Err(p.unsupported_value(other, &["Always", "OnFailure", "Never"])),
    }
}

/// `spec.terminationGracePeriodSeconds`, 30 s when unset.
pub(super) fn grace_period(seconds: Option<i64>, p: &FieldPath) -> Result<Duration, SpecError> {
    let seconds = seconds.unwrap_or(30);
    u64::try_from(seconds)
        .map(Duration::from_secs)
        .map_err(|_| p.error("must be greater than or equal to 0"))
}

/// `spec.activeDeadlineSeconds`: a positive number of seconds.
pub(super) fn active_deadline(
    seconds: Option<i64>,
    p: &FieldPath,
) -> Result<Option<Duration>, SpecError> {
    seconds
        .map(|s| match u64::try_from(s) {
            Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
            _ => Err(p.error("must be greater than 0")),
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::spec::RestartPolicy;
    use crate::spec::parse::test_support::{assert_errors, err, ok, pod, pod_with_spec};

    #[test]
    fn pod_level_settings() {
        let spec = ok(&pod("\
restartPolicy: OnFailure
terminationGracePeriodSeconds: 5
activeDeadlineSeconds: 600
hostname: box
subdomain: svc
containers:
- {name: web, image: web.wasm}
"));
        assert_eq!(spec.restart_policy, RestartPolicy::OnFailure);
        assert_eq!(spec.termination_grace_period, Duration::from_secs(5));
        assert_eq!(spec.active_deadline, Some(Duration::from_secs(600)));
        assert_eq!(spec.hostname, "box");
    }

    #[test]
    fn hostname_override_wins() {
        let spec = ok(&pod_with_spec(
            "hostname: box\nhostnameOverride: box.example.com",
        ));
        assert_eq!(spec.hostname, "box.example.com");
        let e = err(&pod_with_spec("hostname: Box"));
        assert!(e.starts_with("spec.hostname: invalid value \"Box\""), "{e}");
    }

    #[test]
    fn pod_level_value_errors() {
        assert_errors(&[
            (
                pod_with_spec("restartPolicy: Sometimes"),
                "spec.restartPolicy: unsupported value \"Sometimes\": supported values are \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                pod_with_spec("terminationGracePeriodSeconds: -1"),
                "spec.terminationGracePeriodSeconds: must be greater than or equal to 0",
            ),
            (
                pod_with_spec("activeDeadlineSeconds: 0"),
                "spec.activeDeadlineSeconds: must be greater than 0",
            ),
            (
                pod_with_spec("os: {name: windows}"),
                "spec.os.name: \"windows\" not supported by wasmpod",
            ),
        ]);
    }
}
