//! `securityContext`, of the pod and of each container: identities and confinement settings are
//! ignored (the WebAssembly sandbox confines more), privileges are rejected.

use k8s_openapi::api::core::v1 as core;

use super::field_path::FieldPath;
use super::policy::{
    NO_USERS, SANDBOXED, differs_from, ignore_fields, is_true, nonempty, reject_fields,
};
use crate::spec::SpecError;

/// Pod-level `securityContext`: identities are ignored, sysctls cannot be honoured.
pub(super) fn check_pod_security_context(
    sc: core::PodSecurityContext,
    p: &FieldPath,
) -> Result<(), SpecError> {
    let core::PodSecurityContext {
        app_armor_profile,
        fs_group,
        fs_group_change_policy,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_change_policy,
        se_linux_options,
        seccomp_profile,
        supplemental_groups,
        supplemental_groups_policy,
        sysctls,
        windows_options,
    } = sc;
    reject_fields(p, &[("sysctls", nonempty(&sysctls))])?;
    ignore_fields(
        p,
        NO_USERS,
        &[
            ("fsGroup", fs_group.is_some()),
            ("fsGroupChangePolicy", fs_group_change_policy.is_some()),
            ("supplementalGroups", nonempty(&supplemental_groups)),
            (
                "supplementalGroupsPolicy",
                supplemental_groups_policy.is_some(),
            ),
        ],
    );
    ignore_fields(
        p,
        SANDBOXED,
        &[("seLinuxChangePolicy", se_linux_change_policy.is_some())],
    );
    // The rest are defaults for the containers' own settings: judge them the same way.
    check_security_context(
        core::SecurityContext {
            app_armor_profile,
            run_as_group,
            run_as_non_root,
            run_as_user,
            se_linux_options,
            seccomp_profile,
            windows_options,
            ..core::SecurityContext::default()
        },
        p,
    )
}

/// Container `securityContext`: harmless settings are accepted, privileges are not.
pub(super) fn check_security_context(
    sc: core::SecurityContext,
    p: &FieldPath,
) -> Result<(), SpecError> {
    let core::SecurityContext {
        allow_privilege_escalation,
        app_armor_profile,
        capabilities,
        privileged,
        proc_mount,
        read_only_root_filesystem,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_options,
        seccomp_profile,
        windows_options,
    } = sc;
    let core::Capabilities { add, drop } = capabilities.unwrap_or_default();
    reject_fields(
        p,
        &[
            ("privileged", is_true(privileged)),
            (
                "allowPrivilegeEscalation",
                is_true(allow_privilege_escalation),
            ),
            ("capabilities.add", nonempty(&add)),
            ("procMount", differs_from(&proc_mount, "Default")),
        ],
    )?;
    ignore_fields(
        p,
        NO_USERS,
        &[
            ("capabilities.drop", nonempty(&drop)),
            ("runAsGroup", run_as_group.is_some()),
            ("runAsNonRoot", run_as_non_root.is_some()),
            ("runAsUser", run_as_user.is_some()),
        ],
    );
    ignore_fields(
        p,
        SANDBOXED,
        &[
            ("appArmorProfile", app_armor_profile.is_some()),
            (
                "readOnlyRootFilesystem",
                read_only_root_filesystem.is_some(),
            ),
            ("seLinuxOptions", se_linux_options.is_some()),
            ("seccompProfile", seccomp_profile.is_some()),
            ("windowsOptions", windows_options.is_some()),
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::spec::parse::test_support::{err, ok, pod, pod_with_container};

    #[test]
    fn privileged_is_unsupported() {
        assert_eq!(
            err(&pod_with_container("securityContext: {privileged: true}")),
            "spec.containers[0].securityContext.privileged: not supported by wasmpod"
        );
        assert_eq!(
            err(&pod("\
containers:
- {name: a, image: a.wasm}
- name: b
  image: b.wasm
  securityContext:
    privileged: true
")),
            "spec.containers[1].securityContext.privileged: not supported by wasmpod"
        );
    }

    #[test]
    fn security_context_escalations_are_unsupported() {
        let cases = [
            ("allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
            ("capabilities: {add: [NET_ADMIN]}", "capabilities.add"),
            ("procMount: Unmasked", "procMount"),
        ];
        for (yaml, field) in cases {
            assert_eq!(
                err(&pod_with_container(&format!("securityContext: {{{yaml}}}"))),
                format!("spec.containers[0].securityContext.{field}: not supported by wasmpod")
            );
        }
        ok(&pod_with_container(
            "securityContext: {privileged: false, procMount: Default, capabilities: {add: [], drop: [ALL]}, runAsGroup: 1, seLinuxOptions: {level: s0}}",
        ));
    }
}
