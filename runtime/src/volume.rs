//! Volumes: the host directories a pod's containers share, preopened at their `mountPath`s.
//!
//! `emptyDir` is a fresh directory under the pod's directory (on `/dev/shm` for
//! `medium: Memory`), removed when the pod is deleted; `hostPath` is the host's directory,
//! checked (or created) as its `type` says. Host paths are opened in exactly one place,
//! [`crate::engine`]'s preopen, through wasmtime-wasi's capability-based filesystem: a guest
//! can never leave a preopened directory by `..` or a symlink.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::engine::Preopen;
use crate::error::ErrorKind;
use crate::spec::{HostPathType, MountSpec, VolumeSource, VolumeSpec};

/// A volume could not be prepared or mounted.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A `hostPath` of type `Directory` (or unset) that does not exist.
    #[error("volume {volume:?}: hostPath {path} does not exist")]
    HostPathMissing {
        /// The volume's name.
        volume: String,
        /// The host path.
        path: PathBuf,
    },
    /// A `hostPath` that is not a directory.
    #[error("volume {volume:?}: hostPath {path} is not a directory")]
    NotADirectory {
        /// The volume's name.
        volume: String,
        /// The host path.
        path: PathBuf,
    },
    /// A mount names a volume the pod does not have.
    #[error("volume {volume:?} is not declared")]
    Undeclared {
        /// The volume's name.
        volume: String,
    },
    /// A `subPath` that leaves its volume (through `..` or a symlink).
    #[error("volume {volume:?}: subPath {sub_path:?} leaves the volume")]
    SubPathEscapes {
        /// The volume's name.
        volume: String,
        /// The sub path.
        sub_path: String,
    },
    /// A host file operation failed.
    #[error("volume {volume:?}: {op} {path}: {source}")]
    Io {
        /// The volume's name.
        volume: String,
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl VolumeError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::HostPathMissing { .. } => ErrorKind::NotFound,
            VolumeError::NotADirectory { .. }
            | VolumeError::Undeclared { .. }
            | VolumeError::SubPathEscapes { .. } => ErrorKind::InvalidArgument,
            VolumeError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// A pod's prepared volumes, by name.
#[derive(Debug, Default)]
pub struct Volumes {
    volumes: BTreeMap<String, Prepared>,
}

#[derive(Debug)]
struct Prepared {
    host: PathBuf,
    /// Created by us (emptyDir): removed with the pod.
    owned: bool,
}

impl Volumes {
    /// Prepares every volume; emptyDirs go under `root` (created if needed). On error, what was
    /// already created is removed again.
    pub fn prepare(specs: &[VolumeSpec], root: &Path) -> Result<Volumes, VolumeError> {
        let mut volumes = Volumes::default();
        for spec in specs {
            match prepare_one(spec, root) {
                Ok(prepared) => {
                    volumes.volumes.insert(spec.name.clone(), prepared);
                }
                Err(e) => {
                    volumes.remove();
                    return Err(e);
                }
            }
        }
        Ok(volumes)
    }

    /// Prepares one more volume, as a CRI container brings its bind mounts along; emptyDirs
    /// go under `root`. Returns `false`, changing nothing, when a volume of that name exists.
    pub fn add(&mut self, spec: &VolumeSpec, root: &Path) -> Result<bool, VolumeError> {
        if self.volumes.contains_key(&spec.name) {
            return Ok(false);
        }
        let prepared = prepare_one(spec, root)?;
        self.volumes.insert(spec.name.clone(), prepared);
        Ok(true)
    }

    /// The host directory of volume `name`.
    pub fn host_path(&self, name: &str) -> Option<&Path> {
        self.volumes.get(name).map(|v| v.host.as_path())
    }

    /// The preopens of a container's mounts. A `subPath` directory is created inside its
    /// volume when missing, as kubelet does, and must stay inside the volume.
    pub fn preopens(&self, mounts: &[MountSpec]) -> Result<Vec<Preopen>, VolumeError> {
        mounts
            .iter()
            .map(|mount| {
                let volume =
                    self.volumes
                        .get(&mount.volume)
                        .ok_or_else(|| VolumeError::Undeclared {
                            volume: mount.volume.clone(),
                        })?;
                let host = match &mount.sub_path {
                    None => volume.host.clone(),
                    Some(sub) => sub_path(&mount.volume, &volume.host, sub)?,
                };
                Ok(Preopen {
                    host,
                    guest: mount.mount_path.clone(),
                    read_only: mount.read_only,
                })
            })
            .collect()
    }

    /// Removes the volumes wasmpod created (emptyDirs); hostPaths are left alone. Errors are
    /// logged: removal runs during teardown, where it must not hide the primary error.
    pub fn remove(&mut self) {
        for (name, volume) in std::mem::take(&mut self.volumes) {
            if volume.owned
                && let Err(error) = std::fs::remove_dir_all(&volume.host)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(volume = name, path = %volume.host.display(), %error, "cannot remove emptyDir");
            }
        }
    }
}

fn prepare_one(spec: &VolumeSpec, root: &Path) -> Result<Prepared, VolumeError> {
    let io = |op, path: &Path| {
        let volume = spec.name.clone();
        let path = path.to_owned();
        move |source| VolumeError::Io {
            volume,
            op,
            path,
            source,
        }
    };
    match &spec.source {
        VolumeSource::EmptyDir { memory, .. } => {
            let host = if *memory && Path::new("/dev/shm").is_dir() {
                let unique = root.to_string_lossy().replace('/', "_");
                PathBuf::from(format!("/dev/shm/wasmpod{unique}_{}", spec.name))
            } else {
                root.join(&spec.name)
            };
            std::fs::create_dir_all(&host).map_err(io("create directory", &host))?;
            Ok(Prepared { host, owned: true })
        }
        VolumeSource::HostPath { path, kind } => {
            if *kind == HostPathType::DirectoryOrCreate && !path.exists() {
                std::fs::create_dir_all(path).map_err(io("create directory", path))?;
            }
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => Ok(Prepared {
                    host: path.clone(),
                    owned: false,
                }),
                Ok(_) => Err(VolumeError::NotADirectory {
                    volume: spec.name.clone(),
                    path: path.clone(),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(VolumeError::HostPathMissing {
                        volume: spec.name.clone(),
                        path: path.clone(),
                    })
                }
                Err(e) => Err(io("inspect", path)(e)),
            }
        }
    }
}

/// `volume_host/sub`, created if missing, refused if it resolves outside the volume.
fn sub_path(volume: &str, volume_host: &Path, sub: &str) -> Result<PathBuf, VolumeError> {
    let escapes = || VolumeError::SubPathEscapes {
        volume: volume.to_owned(),
        sub_path: sub.to_owned(),
    };
    if !Path::new(sub)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(escapes());
    }
    let joined = volume_host.join(sub);
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| VolumeError::Io {
            volume: volume.to_owned(),
            op,
            path,
            source,
        }
    };
    if !joined.exists() {
        std::fs::create_dir_all(&joined).map_err(io("create directory", &joined))?;
    }
    let real = joined.canonicalize().map_err(io("resolve", &joined))?;
    let base = volume_host
        .canonicalize()
        .map_err(io("resolve", volume_host))?;
    if !real.starts_with(&base) {
        return Err(escapes());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_dir(name: &str) -> VolumeSpec {
        VolumeSpec {
            name: name.into(),
            source: VolumeSource::EmptyDir {
                memory: false,
                size_limit: None,
            },
        }
    }

    fn mount(volume: &str, path: &str, sub_path: Option<&str>) -> MountSpec {
        MountSpec {
            volume: volume.into(),
            mount_path: path.into(),
            read_only: false,
            sub_path: sub_path.map(Into::into),
        }
    }

    #[test]
    fn empty_dirs_are_created_and_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut volumes =
            Volumes::prepare(&[empty_dir("data")], &root.path().join("v")).expect("prepare");
        let host = volumes.host_path("data").expect("data").to_owned();
        assert!(host.is_dir());
        let preopens = volumes
            .preopens(&[mount("data", "/data", None)])
            .expect("preopens");
        assert_eq!(preopens[0].host, host);
        assert_eq!(preopens[0].guest, "/data");
        volumes.remove();
        assert!(!host.exists());
    }

    #[test]
    fn missing_host_path_fails_and_cleans_up_earlier_volumes() {
        let root = tempfile::tempdir().expect("tempdir");
        let missing = VolumeSpec {
            name: "host".into(),
            source: VolumeSource::HostPath {
                path: root.path().join("nope"),
                kind: HostPathType::Directory,
            },
        };
        let err = Volumes::prepare(&[empty_dir("a"), missing], &root.path().join("v"))
            .expect_err("missing hostPath");
        assert!(matches!(err, VolumeError::HostPathMissing { .. }), "{err}");
        assert!(!root.path().join("v/a").exists());
    }

    #[test]
    fn sub_paths_stay_inside_the_volume() {
        let root = tempfile::tempdir().expect("tempdir");
        let volumes =
            Volumes::prepare(&[empty_dir("data")], &root.path().join("v")).expect("prepare");
        let host = volumes.host_path("data").expect("data").to_owned();
        let ok = volumes
            .preopens(&[mount("data", "/x", Some("a/b"))])
            .expect("subPath");
        assert!(ok[0].host.ends_with("a/b") && ok[0].host.is_dir());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.path(), host.join("link")).expect("symlink");
            let err = volumes
                .preopens(&[mount("data", "/x", Some("link"))])
                .expect_err("symlink escape");
            assert!(matches!(err, VolumeError::SubPathEscapes { .. }), "{err}");
        }
        let err = volumes
            .preopens(&[mount("data", "/x", Some("../x"))])
            .expect_err("dotdot");
        assert!(matches!(err, VolumeError::SubPathEscapes { .. }), "{err}");
    }
}
