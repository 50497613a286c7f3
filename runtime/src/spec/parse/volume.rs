//! `spec.volumes`: `emptyDir`, directory `hostPath`, and `configMap` and `secret` volumes of
//! the manifest's own ConfigMaps and Secrets.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1 as core;

use super::field_path::FieldPath;
use super::names::check_element_name;
use super::objects::{ObjectKind, Objects};
use super::policy::{NOT_APPLICABLE, convert_list, ignore_fields, non_empty, reject_fields};
use crate::spec::quantity::parse_memory_bytes;
use crate::spec::{HostPathType, ProjectedFile, SpecError, VolumeSource, VolumeSpec};

/// What a `configMap` or `secret` volume reads: the file's objects in the pod's namespace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sources<'a> {
    /// The manifest's ConfigMaps and Secrets.
    pub(super) objects: &'a Objects,
    /// The pod's namespace.
    pub(super) namespace: &'a str,
}

/// Converts `spec.volumes`, rejecting duplicate names.
pub(super) fn convert_volumes(
    volumes: Vec<core::Volume>,
    p: &FieldPath,
    sources: Sources<'_>,
) -> Result<Vec<VolumeSpec>, SpecError> {
    let mut names = HashSet::new();
    convert_list(volumes, p, |volume, p| {
        check_element_name(&volume.name, p, &mut names, "volume name")?;
        convert_volume(volume, p, sources)
    })
}

/// Converts one volume: `emptyDir`, directory `hostPath`, `configMap` or `secret`.
fn convert_volume(
    volume: core::Volume,
    p: &FieldPath,
    sources: Sources<'_>,
) -> Result<VolumeSpec, SpecError> {
    let core::Volume {
        aws_elastic_block_store,
        azure_disk,
        azure_file,
        cephfs,
        cinder,
        config_map,
        csi,
        downward_api,
        empty_dir,
        ephemeral,
        fc,
        flex_volume,
        flocker,
        gce_persistent_disk,
        git_repo,
        glusterfs,
        host_path,
        image,
        iscsi,
        name,
        nfs,
        persistent_volume_claim,
        photon_persistent_disk,
        portworx_volume,
        projected,
        quobyte,
        rbd,
        scale_io,
        secret,
        storageos,
        vsphere_volume,
    } = volume;
    reject_fields(
        p,
        &[
            ("awsElasticBlockStore", aws_elastic_block_store.is_some()),
            ("azureDisk", azure_disk.is_some()),
            ("azureFile", azure_file.is_some()),
            ("cephfs", cephfs.is_some()),
            ("cinder", cinder.is_some()),
            ("csi", csi.is_some()),
            ("downwardAPI", downward_api.is_some()),
            ("ephemeral", ephemeral.is_some()),
            ("fc", fc.is_some()),
            ("flexVolume", flex_volume.is_some()),
            ("flocker", flocker.is_some()),
            ("gcePersistentDisk", gce_persistent_disk.is_some()),
            ("gitRepo", git_repo.is_some()),
            ("glusterfs", glusterfs.is_some()),
            ("image", image.is_some()),
            ("iscsi", iscsi.is_some()),
            ("nfs", nfs.is_some()),
            ("persistentVolumeClaim", persistent_volume_claim.is_some()),
            ("photonPersistentDisk", photon_persistent_disk.is_some()),
            ("portworxVolume", portworx_volume.is_some()),
            ("projected", projected.is_some()),
            ("quobyte", quobyte.is_some()),
            ("rbd", rbd.is_some()),
            ("scaleIO", scale_io.is_some()),
            ("storageos", storageos.is_some()),
            ("vsphereVolume", vsphere_volume.is_some()),
        ],
    )?;
    let given = [
        empty_dir.is_some(),
        host_path.is_some(),
        config_map.is_some(),
        secret.is_some(),
    ];
    let source = match given.iter().filter(|g| **g).count() {
        0 => return Err(p.error("must specify a volume source")),
        1 => {
            if let Some(empty_dir) = empty_dir {
                convert_empty_dir(empty_dir, &p.field("emptyDir"))?
            } else if let Some(host_path) = host_path {
                convert_host_path(host_path, &p.field("hostPath"))?
            } else if let Some(config_map) = config_map {
                let core::ConfigMapVolumeSource {
                    default_mode,
                    default_user,
                    items,
                    name,
                    optional,
                } = config_map;
                let p = p.field("configMap");
                ignore_fields(
                    &p,
                    NOT_APPLICABLE,
                    &[("defaultUser", default_user.is_some())],
                );
                let reference = Reference {
                    kind: ObjectKind::ConfigMap,
                    name,
                    name_field: "name",
                    optional,
                };
                project(reference, items, default_mode, &p, sources)?
            } else if let Some(secret) = secret {
                let core::SecretVolumeSource {
                    default_mode,
                    default_user,
                    items,
                    optional,
                    secret_name,
                } = secret;
                let p = p.field("secret");
                ignore_fields(
                    &p,
                    NOT_APPLICABLE,
                    &[("defaultUser", default_user.is_some())],
                );
                let reference = Reference {
                    kind: ObjectKind::Secret,
                    name: secret_name.unwrap_or_default(),
                    name_field: "secretName",
                    optional,
                };
                project(reference, items, default_mode, &p, sources)?
            } else {
                return Err(p.error("must specify a volume source"));
            }
        }
        _ => return Err(p.error("may not specify more than one volume source")),
    };
    Ok(VolumeSpec { name, source })
}

/// The object a `configMap` or `secret` volume names.
struct Reference {
    kind: ObjectKind,
    name: String,
    /// `name` or `secretName`, for messages.
    name_field: &'static str,
    optional: Option<bool>,
}

/// Kubernetes' `defaultMode`: `0644`.
const DEFAULT_MODE: i32 = 0o644;

/// A `configMap` or `secret` volume: every key as a file named after it, or the `items` only
/// (`key` → `path`, with its own `mode`), with `defaultMode`. A missing object is an empty
/// volume when `optional`, else an error; so is a missing item's key.
fn project(
    reference: Reference,
    items: Option<Vec<core::KeyToPath>>,
    default_mode: Option<i32>,
    p: &FieldPath,
    sources: Sources<'_>,
) -> Result<VolumeSource, SpecError> {
    let Reference {
        kind,
        name,
        name_field,
        optional,
    } = reference;
    if name.is_empty() {
        return Err(p.field(name_field).required());
    }
    let default_mode = check_mode(
        default_mode.unwrap_or(DEFAULT_MODE),
        &p.field("defaultMode"),
    )?;
    let optional = optional.unwrap_or(false);
    let memory = kind == ObjectKind::Secret;
    let Some(data) = sources
        .objects
        .find(kind, sources.namespace, &name, optional, p)?
    else {
        return Ok(VolumeSource::Projected {
            files: Vec::new(),
            memory,
        });
    };
    let files = match items {
        None => data
            .iter()
            .map(|(key, contents)| ProjectedFile {
                path: PathBuf::from(key),
                contents: contents.clone(),
                mode: default_mode,
            })
            .collect(),
        Some(items) => {
            let mut files: Vec<ProjectedFile> = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let p = p.field("items").index(i);
                let core::KeyToPath {
                    key,
                    mode,
                    path,
                    user,
                } = item;
                ignore_fields(&p, NOT_APPLICABLE, &[("user", user.is_some())]);
                if key.is_empty() {
                    return Err(p.field("key").required());
                }
                let path = check_item_path(&path, &p.field("path"))?;
                let mode = match mode {
                    Some(mode) => check_mode(mode, &p.field("mode"))?,
                    None => default_mode,
                };
                let Some(contents) = data.get(&key) else {
                    if optional {
                        continue;
                    }
                    return Err(p
                        .field("key")
                        .error(format!("{key:?} not found in {} {name:?}", kind.noun())));
                };
                if files
                    .iter()
                    .any(|f| f.path.starts_with(&path) || path.starts_with(&f.path))
                {
                    return Err(p.field("path").error(format!(
                        "{:?} conflicts with another item's path",
                        path.display()
                    )));
                }
                files.push(ProjectedFile {
                    path,
                    contents: contents.clone(),
                    mode,
                });
            }
            files
        }
    };
    Ok(VolumeSource::Projected { files, memory })
}

/// A file mode: permission bits only (`0` to `0777`), as the API server checks them.
fn check_mode(mode: i32, p: &FieldPath) -> Result<u32, SpecError> {
    match u32::try_from(mode) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(p.error(format!(
            "invalid value {mode}: must be a number between 0 and 0777 (octal), both inclusive"
        ))),
    }
}

/// An item's `path`: relative, without `..`, not empty, as the API server checks it.
fn check_item_path(path: &str, p: &FieldPath) -> Result<PathBuf, SpecError> {
    use std::path::Component;
    if path.is_empty() {
        return Err(p.required());
    }
    let relative = Path::new(path);
    if relative.is_absolute() {
        return Err(p.error(format!("invalid value {path:?}: must be a relative path")));
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(p.error(format!("invalid value {path:?}: must not contain '..'")));
    }
    let normal: PathBuf = relative
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if normal.as_os_str().is_empty() {
        return Err(p.error(format!("invalid value {path:?}: must name a file")));
    }
    Ok(normal)
}

/// `emptyDir`: on disk or (`medium: Memory`) on a tmpfs, optionally size-limited.
fn convert_empty_dir(
    empty_dir: core::EmptyDirVolumeSource,
    p: &FieldPath,
) -> Result<VolumeSource, SpecError> {
    let core::EmptyDirVolumeSource {
        medium,
        mode,
        size_limit,
    } = empty_dir;
    ignore_fields(p, NOT_APPLICABLE, &[("mode", mode.is_some())]);
    let memory = match non_empty(medium).as_deref() {
        None => false,
        Some("Memory") => true,
        Some(other) => {
            return Err(p.field("medium").unsupported_value(other, &["", "Memory"]));
        }
    };
    let size_limit = size_limit
        .map(|q| parse_memory_bytes(&q.0).map_err(|e| p.field("sizeLimit").error(e)))
        .transpose()?;
    Ok(VolumeSource::EmptyDir { memory, size_limit })
}

/// `hostPath`: an absolute host directory.
fn convert_host_path(
    host_path: core::HostPathVolumeSource,
    p: &FieldPath,
) -> Result<VolumeSource, SpecError> {
    let core::HostPathVolumeSource { path, type_ } = host_path;
    if path.is_empty() {
        return Err(p.field("path").required());
    }
    if !Path::new(&path).is_absolute() {
        return Err(p.field("path").error("must be an absolute path"));
    }
    let kind = match non_empty(type_).as_deref() {
        None => HostPathType::Unset,
        Some("Directory") => HostPathType::Directory,
        Some("DirectoryOrCreate") => HostPathType::DirectoryOrCreate,
        Some(other @ ("File" | "FileOrCreate" | "Socket" | "CharDevice" | "BlockDevice")) => {
            return Err(p.field("type").error(format!(
                "{other:?} not supported by wasmpod: volumes are preopened directories"
            )));
        }
        Some(other) => {
            return Err(p
                .field("type")
                .unsupported_value(other, &["", "Directory", "DirectoryOrCreate"]));
        }
    };
    Ok(VolumeSource::HostPath {
        path: PathBuf::from(path),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::spec::parse::test_support::{err, ok, pod, pod_with_spec};
    use crate::spec::{HostPathType, VolumeSource};

    #[test]
    fn volumes() {
        let spec = ok(&pod("\
volumes:
- name: scratch
  emptyDir: {}
- name: cache
  emptyDir: {medium: Memory, sizeLimit: 64Mi}
- name: host
  hostPath: {path: /srv/data}
- name: dir
  hostPath: {path: /srv/dir, type: Directory}
- name: made
  hostPath: {path: /srv/made, type: DirectoryOrCreate}
containers:
- {name: web, image: web.wasm}
"));
        let sources: Vec<&VolumeSource> = spec.volumes.iter().map(|v| &v.source).collect();
        assert_eq!(
            sources,
            [
                &VolumeSource::EmptyDir {
                    memory: false,
                    size_limit: None
                },
                &VolumeSource::EmptyDir {
                    memory: true,
                    size_limit: Some(64 << 20)
                },
                &VolumeSource::HostPath {
                    path: PathBuf::from("/srv/data"),
                    kind: HostPathType::Unset
                },
                &VolumeSource::HostPath {
                    path: PathBuf::from("/srv/dir"),
                    kind: HostPathType::Directory
                },
                &VolumeSource::HostPath {
                    path: PathBuf::from("/srv/made"),
                    kind: HostPathType::DirectoryOrCreate
                },
            ]
        );
        assert_eq!(spec.volume("cache").map(|v| v.name.as_str()), Some("cache"));
    }

    /// The error of a pod whose only volume is `volume_yaml`.
    fn volume_err(volume_yaml: &str) -> String {
        err(&pod_with_spec(&format!("volumes:\n- {volume_yaml}")))
    }

    #[test]
    fn volume_errors() {
        assert_eq!(
            err(&pod_with_spec(
                "\
volumes:
- {name: data, emptyDir: {}}
- {name: data, hostPath: {path: /tmp}}
"
            )),
            "spec.volumes[1].name: duplicate volume name \"data\""
        );
        let cases = [
            (
                "{name: c, configMap: {name: cfg}}",
                "spec.volumes[0].configMap: configmap \"cfg\" not found in namespace \"default\" of this manifest",
            ),
            (
                "{name: s, secret: {secretName: s}}",
                "spec.volumes[0].secret: secret \"s\" not found in namespace \"default\" of this manifest",
            ),
            (
                "{name: p, persistentVolumeClaim: {claimName: pvc}}",
                "spec.volumes[0].persistentVolumeClaim: not supported by wasmpod",
            ),
            (
                "{name: kube-api-access-x2x8k, projected: {sources: [{serviceAccountToken: {path: token}}]}}",
                "spec.volumes[0].projected: not supported by wasmpod",
            ),
            ("{name: d}", "spec.volumes[0]: must specify a volume source"),
            (
                "{name: d, emptyDir: {}, hostPath: {path: /x}}",
                "spec.volumes[0]: may not specify more than one volume source",
            ),
            (
                "{name: d, emptyDir: {medium: HugePages}}",
                "spec.volumes[0].emptyDir.medium: unsupported value \"HugePages\": supported values are \"\", \"Memory\"",
            ),
            (
                "{name: d, emptyDir: {sizeLimit: 1Q}}",
                "spec.volumes[0].emptyDir.sizeLimit: invalid quantity \"1Q\"",
            ),
            (
                "{name: d, hostPath: {path: rel}}",
                "spec.volumes[0].hostPath.path: must be an absolute path",
            ),
            (
                "{name: d, hostPath: {path: ''}}",
                "spec.volumes[0].hostPath.path: required value",
            ),
            (
                "{name: d, hostPath: {path: /etc/hosts, type: File}}",
                "spec.volumes[0].hostPath.type: \"File\" not supported by wasmpod: volumes are preopened directories",
            ),
            (
                "{name: d, hostPath: {path: /run/x.sock, type: Socket}}",
                "spec.volumes[0].hostPath.type: \"Socket\" not supported by wasmpod: volumes are preopened directories",
            ),
            (
                "{name: d, hostPath: {path: /x, type: Dir}}",
                "spec.volumes[0].hostPath.type: unsupported value \"Dir\": supported values are \"\", \"Directory\", \"DirectoryOrCreate\"",
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(volume_err(yaml), want, "{yaml}");
        }
        assert!(
            volume_err("{name: Data, emptyDir: {}}")
                .starts_with("spec.volumes[0].name: invalid value \"Data\"")
        );
    }
}
