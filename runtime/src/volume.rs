//! Volumes: the host directories a pod's containers share, preopened at their `mountPath`s.
//!
//! `emptyDir` is a fresh directory under the pod's directory (on `/dev/shm` for
//! `medium: Memory`), removed when the pod is deleted; `hostPath` is the host's directory,
//! checked (or created) as its `type` says; a `configMap` or `secret` volume is a fresh
//! directory like an emptyDir (a Secret's on `/dev/shm`), its files written beneath it when
//! the pod starts, and read-only in every container. Each volume's directory is opened once, as a
//! [`HostDir`]; subPaths are resolved beneath it, and guests get the open directories
//! themselves, inside which wasmtime-wasi's capability-based filesystem keeps them: neither a
//! guest nor the runtime ever leaves a volume by `..` or a symlink.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::engine::Preopen;
use crate::error::ErrorKind;
use crate::hostdir::HostDir;
use crate::pod::PodDir;
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
    #[error(
        "volume {volume:?}: subPath {sub_path:?} leads out of the volume (through .. or a symlink)"
    )]
    SubPathEscapes {
        /// The volume's name.
        volume: String,
        /// The sub path.
        sub_path: String,
    },
    /// A `workingDir` inside a mount that leads out of its volume through a symlink (or `..`).
    #[error("workingDir {working_dir:?} leads out of its volume (through .. or a symlink)")]
    WorkingDirEscapes {
        /// The working directory, as the guest names it.
        working_dir: String,
    },
    /// A `workingDir` inside a mount that cannot be opened (or created).
    #[error("workingDir {working_dir:?}: {source}")]
    WorkingDir {
        /// The working directory, as the guest names it.
        working_dir: String,
        /// The underlying error.
        source: std::io::Error,
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
            | VolumeError::SubPathEscapes { .. }
            | VolumeError::WorkingDirEscapes { .. }
            | VolumeError::WorkingDir { .. } => ErrorKind::InvalidArgument,
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
    /// The volume's directory, held open: everything under it is resolved beneath it.
    dir: HostDir,
    /// Created by us (emptyDir, configMap, secret): removed with the pod.
    owned: bool,
    /// Read-only in every mount (configMap, secret).
    read_only: bool,
}

impl Volumes {
    /// Prepares every volume; emptyDirs go where `pod_dir` says (created if needed). On error,
    /// what was already created is removed again.
    pub fn prepare(specs: &[VolumeSpec], pod_dir: &PodDir) -> Result<Volumes, VolumeError> {
        let mut volumes = Volumes::default();
        for spec in specs {
            match prepare_one(spec, pod_dir) {
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
    /// go where `pod_dir` says. Returns `false`, changing nothing, when a volume of that name
    /// exists.
    pub fn add(&mut self, spec: &VolumeSpec, pod_dir: &PodDir) -> Result<bool, VolumeError> {
        if self.volumes.contains_key(&spec.name) {
            return Ok(false);
        }
        let prepared = prepare_one(spec, pod_dir)?;
        self.volumes.insert(spec.name.clone(), prepared);
        Ok(true)
    }

    /// The host directory of volume `name`, as it was named when it was prepared (for
    /// messages and for the pod's owner; paths under it are resolved through [`Volumes::dir`]).
    pub fn host_path(&self, name: &str) -> Option<&Path> {
        self.volumes.get(name).map(|v| v.dir.path())
    }

    /// The open directory of volume `name`.
    pub fn dir(&self, name: &str) -> Option<&HostDir> {
        self.volumes.get(name).map(|v| &v.dir)
    }

    /// The preopens of a container's mounts. A `subPath` is resolved beneath its volume, never
    /// following a link out of it, and created there when missing, as kubelet does; one that
    /// leads out of the volume is refused and creates nothing outside it.
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
                let dir = match &mount.sub_path {
                    None => volume.dir.clone(),
                    Some(sub) => sub_path(&mount.volume, &volume.dir, sub, !volume.read_only)?,
                };
                Ok(Preopen {
                    dir,
                    guest: mount.mount_path.clone(),
                    read_only: mount.read_only || volume.read_only,
                })
            })
            .collect()
    }

    /// Removes the volumes wasmpod created (emptyDirs); hostPaths are left alone. Errors are
    /// logged: removal runs during teardown, where it must not hide the primary error.
    pub fn remove(&mut self) {
        for (name, volume) in std::mem::take(&mut self.volumes) {
            let path = volume.dir.path();
            // Links a guest planted are removed, never followed; a tree of any depth goes.
            if volume.owned
                && let Err(error) = crate::hostdir::remove_tree(path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(volume = name, path = %path.display(), %error, "cannot remove emptyDir");
            }
        }
    }
}

/// The working directory `cwd` (an absolute guest path) as an extra preopen named `.`, so
/// relative paths resolve inside it; `None` when neither a mount nor the `rootfs` (the
/// image's root filesystem, preopened at `/`) holds it, or when a mount is at `/` (which
/// already answers relative paths).
///
/// wasi-libc (what Rust std guests use) starts every guest at `/` and ignores both
/// `wasi:cli/environment.initial-cwd` and `PWD`; it resolves a relative path against the
/// preopen whose name is `.` (or `/`). So a `workingDir` inside a mount is preopened again at
/// `.`; `getcwd()` still answers `/`. It is resolved beneath the mount's open directory, and
/// created there when missing (as a container runtime creates a missing working directory)
/// unless the mount is read-only: a symlink a guest planted never leads it out of the volume.
pub fn working_dir(
    preopens: &[Preopen],
    rootfs: Option<&Preopen>,
    cwd: &str,
) -> Result<Option<Preopen>, VolumeError> {
    if preopens
        .iter()
        .any(|p| matches!(p.guest.as_str(), "/" | "."))
    {
        return Ok(None);
    }
    let guest = Path::new(cwd);
    let Some(mount) = preopens
        .iter()
        .filter(|p| guest.starts_with(&p.guest))
        .max_by_key(|p| p.guest.len())
        .or(rootfs)
    else {
        return Ok(None);
    };
    let Ok(rest) = guest.strip_prefix(&mount.guest) else {
        return Ok(None);
    };
    let opened = if mount.read_only {
        mount.dir.open_dir(rest)
    } else {
        mount.dir.create_dir(rest)
    };
    let dir = opened.map_err(|source| {
        let working_dir = cwd.to_owned();
        if crate::hostdir::is_escape(&source) {
            VolumeError::WorkingDirEscapes { working_dir }
        } else {
            VolumeError::WorkingDir {
                working_dir,
                source,
            }
        }
    })?;
    Ok(Some(Preopen {
        dir,
        guest: ".".into(),
        read_only: mount.read_only,
    }))
}

fn prepare_one(spec: &VolumeSpec, pod_dir: &PodDir) -> Result<Prepared, VolumeError> {
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
            // `/dev/shm` is writable by every user of the host: the directory is made there
            // (or under the pod's own directory) and opened without following a link, and must
            // belong to wasmpod's user, so nobody can hand the pod a directory of their choice.
            let (parent, name) = pod_dir.empty_dir(&spec.name, *memory);
            std::fs::create_dir_all(&parent).map_err(io("create directory", &parent))?;
            let dir = HostDir::create_own(&parent, &name)
                .map_err(io("create directory", &parent.join(&name)))?;
            Ok(Prepared {
                dir,
                owned: true,
                read_only: false,
            })
        }
        VolumeSource::Projected { files, memory } => {
            let (parent, name) = pod_dir.empty_dir(&spec.name, *memory);
            std::fs::create_dir_all(&parent).map_err(io("create directory", &parent))?;
            let dir = HostDir::create_own(&parent, &name)
                .map_err(io("create directory", &parent.join(&name)))?;
            let written = files.iter().try_for_each(|file| {
                dir.write_new(&file.path, &file.contents, file.mode)
                    .map_err(io("write", &dir.path().join(&file.path)))
            });
            if let Err(e) = written {
                let _ = crate::hostdir::remove_tree(dir.path());
                return Err(e);
            }
            Ok(Prepared {
                dir,
                owned: true,
                read_only: true,
            })
        }
        VolumeSource::HostPath { path, kind } => {
            if *kind == HostPathType::DirectoryOrCreate && !path.exists() {
                std::fs::create_dir_all(path).map_err(io("create directory", path))?;
            }
            // A hostPath is the host's directory by definition: its own path is followed as
            // the host resolves it, as Kubernetes does. Nothing under it is.
            match HostDir::open(path) {
                Ok(dir) => Ok(Prepared {
                    dir,
                    owned: false,
                    read_only: false,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(VolumeError::HostPathMissing {
                        volume: spec.name.clone(),
                        path: path.clone(),
                    })
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    Err(VolumeError::NotADirectory {
                        volume: spec.name.clone(),
                        path: path.clone(),
                    })
                }
                Err(e) => Err(io("open", path)(e)),
            }
        }
    }
}

/// `sub` beneath the volume's directory, created there if missing (and `create`: not in a
/// read-only volume); refused if it leads out of the volume, lexically or through a symlink.
fn sub_path(volume: &str, dir: &HostDir, sub: &str, create: bool) -> Result<HostDir, VolumeError> {
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
    let opened = if create {
        dir.create_dir(Path::new(sub))
    } else {
        dir.open_dir(Path::new(sub))
    };
    opened.map_err(|source| {
        if crate::hostdir::is_escape(&source) {
            escapes()
        } else {
            VolumeError::Io {
                volume: volume.to_owned(),
                op: "open subPath",
                path: dir.path().join(sub),
                source,
            }
        }
    })
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
            Volumes::prepare(&[empty_dir("data")], &PodDir::new(root.path())).expect("prepare");
        let host = volumes.host_path("data").expect("data").to_owned();
        assert!(host.is_dir());
        let preopens = volumes
            .preopens(&[mount("data", "/data", None)])
            .expect("preopens");
        assert_eq!(preopens[0].dir.path(), host);
        assert_eq!(preopens[0].guest, "/data");
        volumes.remove();
        assert!(!host.exists());
    }

    #[test]
    fn projected_files_are_written_with_their_modes_and_mounted_read_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().expect("tempdir");
        let file = |path: &str, contents: &str, mode| crate::spec::ProjectedFile {
            path: path.into(),
            contents: contents.as_bytes().to_vec(),
            mode,
        };
        let config = VolumeSpec {
            name: "config".into(),
            source: VolumeSource::Projected {
                files: vec![
                    file("app.conf", "mode=fast\n", 0o644),
                    file("keys/a/b", "x", 0o400),
                ],
                memory: false,
            },
        };
        let mut volumes = Volumes::prepare(&[config], &PodDir::new(root.path())).expect("prepare");
        let host = volumes.host_path("config").expect("config").to_owned();
        assert_eq!(
            std::fs::read_to_string(host.join("app.conf")).expect("file"),
            "mode=fast\n"
        );
        let mode = |path: &str| {
            std::fs::metadata(host.join(path))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("app.conf"), mode("keys/a/b")), (0o644, 0o400));
        // Read-only in every mount, whatever the mount says; a subPath is not created in it.
        let preopens = volumes
            .preopens(&[
                mount("config", "/etc/app", None),
                mount("config", "/k", Some("keys/a")),
            ])
            .expect("preopens");
        assert!(preopens.iter().all(|p| p.read_only));
        let missing = volumes.preopens(&[mount("config", "/x", Some("nope"))]);
        assert!(missing.is_err());
        assert!(!host.join("nope").exists());
        volumes.remove();
        assert!(!host.exists());
    }

    #[test]
    fn a_projected_file_is_never_written_through_a_planted_link() {
        // The parser refuses two items at one path; here too a file that exists (or a link
        // at its name) is never written through: the write fails and the half-made volume
        // is removed.
        let root = tempfile::tempdir().expect("tempdir");
        let pod = PodDir::new(root.path().join("pod"));
        let twice = VolumeSpec {
            name: "config".into(),
            source: VolumeSource::Projected {
                files: vec![
                    crate::spec::ProjectedFile {
                        path: "a".into(),
                        contents: b"1".to_vec(),
                        mode: 0o644,
                    },
                    crate::spec::ProjectedFile {
                        path: "a".into(),
                        contents: b"2".to_vec(),
                        mode: 0o644,
                    },
                ],
                memory: false,
            },
        };
        let err = Volumes::prepare(&[twice], &pod).expect_err("a file written twice");
        assert!(matches!(err, VolumeError::Io { op: "write", .. }), "{err}");
        assert!(
            !pod.empty_dir_path("config", false).exists(),
            "half-made volume removed"
        );
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
        let err = Volumes::prepare(&[empty_dir("a"), missing], &PodDir::new(root.path()))
            .expect_err("missing hostPath");
        assert!(matches!(err, VolumeError::HostPathMissing { .. }), "{err}");
        assert!(!root.path().join("volumes/a").exists());
    }

    #[test]
    fn sub_paths_stay_inside_the_volume() {
        let root = tempfile::tempdir().expect("tempdir");
        let volumes =
            Volumes::prepare(&[empty_dir("data")], &PodDir::new(root.path())).expect("prepare");
        let host = volumes.host_path("data").expect("data").to_owned();
        let ok = volumes
            .preopens(&[mount("data", "/x", Some("a/b"))])
            .expect("subPath");
        assert!(ok[0].dir.path().ends_with("a/b") && host.join("a/b").is_dir());
        let err = volumes
            .preopens(&[mount("data", "/x", Some("../x"))])
            .expect_err("dotdot");
        assert!(matches!(err, VolumeError::SubPathEscapes { .. }), "{err}");
    }

    /// The attack of Kubernetes' subPath CVEs: a guest plants links in its volume, a later
    /// container's subPath goes through them. Refused, and nothing is created outside.
    #[test]
    fn sub_paths_through_planted_links_are_refused_and_create_nothing_outside() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).expect("outside");
        let volumes =
            Volumes::prepare(&[empty_dir("data")], &PodDir::new(root.path())).expect("prepare");
        let host = volumes.host_path("data").expect("data").to_owned();
        let up = "../".repeat(host.components().count()) + &outside.to_string_lossy()[1..];
        std::os::unix::fs::symlink(&up, host.join("up")).expect("relative link");
        std::os::unix::fs::symlink(&outside, host.join("abs")).expect("absolute link");
        std::os::unix::fs::symlink("up", host.join("chain")).expect("chained link");
        for sub in ["up", "up/made", "abs/made/deeper", "chain/x"] {
            let err = volumes
                .preopens(&[mount("data", "/x", Some(sub))])
                .expect_err(sub);
            assert!(
                matches!(err, VolumeError::SubPathEscapes { .. }),
                "{sub}: {err}"
            );
        }
        assert_eq!(std::fs::read_dir(&outside).expect("outside").count(), 0);
    }

    /// `/dev/shm` is everybody's: a link planted where a `medium: Memory` emptyDir goes must
    /// not become the pod's volume.
    #[test]
    fn a_memory_empty_dir_is_never_a_planted_link() {
        let root = tempfile::tempdir().expect("tempdir");
        let pod = root.path().join("pod");
        let memory = VolumeSpec {
            name: "mem".into(),
            source: VolumeSource::EmptyDir {
                memory: true,
                size_limit: None,
            },
        };
        let target = root.path().join("target");
        std::fs::create_dir(&target).expect("target");
        let pod = PodDir::new(pod);
        let planted = pod.empty_dir_path("mem", true);
        std::os::unix::fs::symlink(&target, &planted).expect("plant");
        let err = Volumes::prepare(std::slice::from_ref(&memory), &pod).expect_err("planted link");
        std::fs::remove_file(&planted).expect("unplant");
        assert!(matches!(err, VolumeError::Io { .. }), "{err}");
        let mut volumes = Volumes::prepare(&[memory], &pod).expect("prepare");
        assert_eq!(volumes.host_path("mem"), Some(planted.as_path()));
        volumes.remove();
        assert!(!planted.exists());
    }
}
