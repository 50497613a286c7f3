//! A container's `volumeMounts`: declared volumes at distinct absolute guest paths.

use std::collections::HashSet;
use std::path::{Component, Path};

use k8s_openapi::api::core::v1 as core;

use super::field_path::FieldPath;
use super::policy::{
    absolute_guest_path, check_unique, convert_list, differs_from, non_empty, nonempty,
    nonempty_str, reject_fields,
};
use crate::spec::{MountSpec, SpecError};

/// `volumeMounts`: declared volumes at distinct absolute paths.
pub(super) fn convert_mounts(
    mounts: Vec<core::VolumeMount>,
    p: &FieldPath,
    volumes: &HashSet<&str>,
) -> Result<Vec<MountSpec>, SpecError> {
    let mut paths = HashSet::new();
    convert_list(mounts, p, |mount, p| {
        let mount = convert_mount(mount, p, volumes)?;
        check_unique(
            &mut paths,
            &mount.mount_path,
            &p.field("mountPath"),
            "mount path",
        )?;
        Ok(mount)
    })
}

/// One `volumeMounts` entry.
fn convert_mount(
    mount: core::VolumeMount,
    p: &FieldPath,
    volumes: &HashSet<&str>,
) -> Result<MountSpec, SpecError> {
    let core::VolumeMount {
        bind_mount_options,
        mount_path,
        mount_propagation,
        name,
        read_only,
        recursive_read_only,
        sub_path,
        sub_path_expr,
    } = mount;
    reject_fields(
        p,
        &[
            ("bindMountOptions", nonempty(&bind_mount_options)),
            ("mountPropagation", differs_from(&mount_propagation, "None")),
            (
                "recursiveReadOnly",
                differs_from(&recursive_read_only, "Disabled"),
            ),
            ("subPathExpr", nonempty_str(&sub_path_expr)),
        ],
    )?;
    if name.is_empty() {
        return Err(p.field("name").required());
    }
    if !volumes.contains(name.as_str()) {
        return Err(p
            .field("name")
            .error(format!("volume {name:?} is not declared in spec.volumes")));
    }
    if mount_path.is_empty() {
        return Err(p.field("mountPath").required());
    }
    let mount_path = absolute_guest_path(mount_path, &p.field("mountPath"))?;
    let sub_path = non_empty(sub_path)
        .map(|sub_path| check_sub_path(sub_path, &p.field("subPath")))
        .transpose()?;
    Ok(MountSpec {
        volume: name,
        mount_path,
        read_only: read_only.unwrap_or(false),
        sub_path,
    })
}

/// `subPath`: relative, without `..`.
fn check_sub_path(sub_path: String, p: &FieldPath) -> Result<String, SpecError> {
    let path = Path::new(&sub_path);
    if path.is_absolute() {
        return Err(p.error("must be a relative path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(p.error("must not contain '..'"));
    }
    Ok(sub_path)
}

#[cfg(test)]
mod tests {
    use crate::spec::MountSpec;
    use crate::spec::parse::test_support::{container, err, mount_pod, ok};

    #[test]
    fn volume_mounts() {
        let spec = ok(&mount_pod(
            "[{name: data, mountPath: /data, readOnly: true, subPath: a/b}, {name: logs, mountPath: /, mountPropagation: None, recursiveReadOnly: Disabled}]",
        ));
        assert_eq!(
            container(&spec).mounts,
            vec![
                MountSpec {
                    volume: "data".to_string(),
                    mount_path: "/data".to_string(),
                    read_only: true,
                    sub_path: Some("a/b".to_string()),
                },
                MountSpec {
                    volume: "logs".to_string(),
                    mount_path: "/".to_string(),
                    read_only: false,
                    sub_path: None,
                },
            ]
        );
    }

    #[test]
    fn volume_mount_errors() {
        let p = "spec.containers[0].volumeMounts[0]";
        let cases = [
            (
                "[{name: cache, mountPath: /c}]",
                format!("{p}.name: volume \"cache\" is not declared in spec.volumes"),
            ),
            (
                "[{name: data, mountPath: data}]",
                format!("{p}.mountPath: must be an absolute path"),
            ),
            ("[{name: data}]", format!("{p}.mountPath: required value")),
            ("[{mountPath: /d}]", format!("{p}.name: required value")),
            (
                "[{name: data, mountPath: /d, subPath: /abs}]",
                format!("{p}.subPath: must be a relative path"),
            ),
            (
                "[{name: data, mountPath: /d, subPath: a/../../b}]",
                format!("{p}.subPath: must not contain '..'"),
            ),
            (
                "[{name: data, mountPath: /d, mountPropagation: Bidirectional}]",
                format!("{p}.mountPropagation: not supported by wasmpod"),
            ),
            (
                "[{name: data, mountPath: /d, recursiveReadOnly: Enabled}]",
                format!("{p}.recursiveReadOnly: not supported by wasmpod"),
            ),
            (
                "[{name: data, mountPath: /d, subPathExpr: $(POD)}]",
                format!("{p}.subPathExpr: not supported by wasmpod"),
            ),
            (
                "[{name: data, mountPath: /d}, {name: logs, mountPath: /d}]",
                "spec.containers[0].volumeMounts[1].mountPath: duplicate mount path \"/d\""
                    .to_string(),
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(err(&mount_pod(yaml)), want, "{yaml}");
        }
    }
}
