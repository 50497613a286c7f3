//! `create`: the sandbox itself, and a container in it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::container::Container;
use super::{
    CONTROL_DIR, ContainerConfig, PodDir, PodError, Sandbox, SandboxConfig, SandboxState, Shared,
};
use crate::engine::{Engine, Image, ImageError, Preopen};
use crate::error::{Error, Result};
use crate::hostdir::HostDir;
use crate::logs::{ContainerLog, LogFile, LogSink, LogTarget};
use crate::net::NameService;
use crate::spec::ContainerSpec;
use crate::volume::Volumes;

impl Sandbox {
    /// Creates the sandbox: its directory and its volumes. Nothing is left behind on error.
    #[tracing::instrument(name = "create_sandbox", skip_all, fields(pod = %config.name))]
    pub async fn create(engine: &Engine, config: SandboxConfig) -> Result<Sandbox> {
        let dir = config.dir.clone();
        let volumes = config.volumes.clone();
        let volumes = crate::blocking::unblocked(move || -> Result<Volumes> {
            let existed = dir.exists();
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
            let prepared = Volumes::prepare(&volumes, &PodDir::new(&dir));
            if prepared.is_err() && !existed {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(prepared?)
        })
        .await?;
        tracing::debug!(pod = config.name, dir = %config.dir.display(), "sandbox created");
        Ok(Sandbox {
            shared: Arc::new(Shared {
                engine: engine.clone(),
                network: crate::net::Network::new(config.network.clone()),
                config,
                state: Mutex::new(SandboxState {
                    volumes,
                    containers: BTreeMap::new(),
                    deleted: false,
                }),
            }),
        })
    }

    /// Adds a volume to the sandbox after its creation, for containers created later to mount
    /// (CRI hands each container its volumes as bind mounts). Returns `false`, changing
    /// nothing, when a volume of that name exists.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, volume = %spec.name))]
    pub fn add_volume(&self, spec: &crate::spec::VolumeSpec) -> Result<bool> {
        let mut state = self.lock();
        self.ensure_alive(&state)?;
        Ok(state.volumes.add(spec, &self.dir())?)
    }

    /// Creates a container: loads its image (through the compile cache) unless the config
    /// carries it, makes its log file and control directory, resolves its mounts and working
    /// directory. The name must be free: remove an exited container before creating its
    /// successor.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = %config.spec.name))]
    pub async fn create_container(&self, config: ContainerConfig) -> Result<()> {
        {
            let state = self.lock();
            self.ensure_alive(&state)?;
            if state.containers.contains_key(&config.spec.name) {
                return Err(PodError::AlreadyExists {
                    pod: self.shared.config.name.clone(),
                    name: config.spec.name.clone(),
                }
                .into());
            }
        }
        // Every blocking step (opening the image's rootfs and reading its name-service files,
        // loading the image when the caller has not, the log and control directories, the log
        // file) runs in one hop off the async threads.
        let name = config.spec.name.clone();
        let engine = self.shared.engine.clone();
        let pod_dir = self.dir();
        let given = config.image.clone();
        let (module, rootfs) = (config.spec.module.clone(), config.spec.rootfs.clone());
        let sink = self.shared.config.logs.clone();
        let attempt = config.attempt;
        let log_file = match &sink {
            LogSink::Files(rotation) => Some(LogFile {
                path: pod_dir.log_file(&name, attempt),
                rotation: *rotation,
            }),
            LogSink::Memory(_) | LogSink::ObserverOnly => None,
        };
        let observer = self.log_observer(&name);
        let control_dir = pod_dir.control_dir(&name);
        let prepared = {
            let (name, control_dir) = (name.clone(), control_dir.clone());
            crate::blocking::unblocked(move || -> Result<(Image, ContainerLog, Option<Rootfs>)> {
                let root = match rootfs {
                    Some(path) => Some(
                        HostDir::open(&path).map_err(|source| ImageError::Read { path, source })?,
                    ),
                    None => None,
                };
                let image = match given {
                    Some(image) => image,
                    None => load_image(&engine, &module, root.as_ref())?,
                };
                let root = root
                    .map(Rootfs::read)
                    .transpose()
                    .map_err(|e| setup(&name, e))?;
                if log_file.is_some() {
                    let log_dir = pod_dir.log_dir(&name);
                    std::fs::create_dir_all(&log_dir)
                        .map_err(|e| setup(&name, Error::io("create directory", &log_dir, e)))?;
                }
                fresh_dir(&control_dir)
                    .map_err(|e| setup(&name, Error::io("create directory", &control_dir, e)))?;
                let log_path = log_file.as_ref().map(|f| f.path.clone());
                let target = match (log_file, &sink) {
                    (Some(file), _) => LogTarget::File(file),
                    (None, LogSink::Memory(logs)) => LogTarget::Memory {
                        logs,
                        name: &name,
                        attempt,
                    },
                    (None, _) => LogTarget::None,
                };
                let log = ContainerLog::create(target, observer).map_err(|e| {
                    setup(
                        &name,
                        Error::io("create log", log_path.unwrap_or_default(), e),
                    )
                })?;
                Ok((image, log, root))
            })
            .await?
        };
        let (image, log, root) = prepared;
        let log_path = log.path();
        let (rootfs, names) = match root {
            Some(root) => {
                let names =
                    NameService::from_files(root.hosts.as_deref(), root.resolv_conf.as_deref())
                        .map_err(|e| {
                            setup(
                                &name,
                                Error::io("set up the resolver", "/etc/resolv.conf", e),
                            )
                        })?;
                (Some(root.dir), Some(names))
            }
            None => (None, None),
        };

        let mut state = self.lock();
        self.ensure_alive(&state)?;
        if state.containers.contains_key(&name) {
            return Err(PodError::AlreadyExists {
                pod: self.shared.config.name.clone(),
                name,
            }
            .into());
        }
        // Mounts and the working directory are resolved now, once: a bad one fails `create`,
        // and what a guest planted in a volume later cannot redirect them.
        let preopens = preopens(&state.volumes, &config.spec, rootfs, &control_dir)
            .map_err(|e| setup(&name, e))?;
        tracing::debug!(
            pod = self.shared.config.name,
            container = name,
            kind = image.kind().as_str(),
            "container created"
        );
        state.containers.insert(
            name,
            Container::new(config, image, log, log_path, control_dir, preopens, names),
        );
        Ok(())
    }
}

/// An image's rootfs, opened, with its `/etc/hosts` and `/etc/resolv.conf` (`None` where
/// missing).
struct Rootfs {
    dir: HostDir,
    hosts: Option<Vec<u8>>,
    resolv_conf: Option<Vec<u8>>,
}

impl Rootfs {
    /// Reads the name-service files of the rootfs `dir`, beneath it.
    fn read(dir: HostDir) -> Result<Rootfs> {
        let read = |relative: &str| {
            dir.read_regular(Path::new(relative), crate::net::dns::MAX_FILE)
                .map_err(|e| Error::io("read", Path::new("/").join(relative), e))
        };
        let (hosts, resolv_conf) = (read("etc/hosts")?, read("etc/resolv.conf")?);
        Ok(Rootfs {
            dir,
            hosts,
            resolv_conf,
        })
    }
}

/// The guest at `module`, read beneath `rootfs` when it is an image's root filesystem.
fn load_image(engine: &Engine, module: &Path, rootfs: Option<&HostDir>) -> Result<Image> {
    let image = match rootfs {
        // An absolute module is a host file (an image's Wasm layer), not one of the rootfs.
        Some(root) if !module.is_absolute() => engine.load_image_in(root, module),
        _ => engine.load_image(module),
    };
    Ok(image?)
}

/// A container's preopens: its mounts, its image's root filesystem at `/` (when it has one:
/// the shim's bundles; a mount wins over it for the paths beneath the mount), its working
/// directory (as `.`) and, read-only, its control directory at [`CONTROL_DIR`].
fn preopens(
    volumes: &Volumes,
    spec: &ContainerSpec,
    rootfs: Option<HostDir>,
    control_dir: &Path,
) -> Result<Vec<Preopen>> {
    let mut preopens = volumes.preopens(&spec.mounts)?;
    let rootfs = rootfs.map(|dir| Preopen {
        dir,
        guest: "/".into(),
        read_only: spec.read_only_rootfs,
    });
    if let Some(cwd) = &spec.working_dir
        && let Some(dir) = crate::volume::working_dir(&preopens, rootfs.as_ref(), cwd)?
    {
        preopens.push(dir);
    }
    preopens.extend(rootfs);
    let control = HostDir::open(control_dir).map_err(|e| Error::io("open", control_dir, e))?;
    preopens.push(Preopen {
        dir: control,
        guest: CONTROL_DIR.into(),
        read_only: true,
    });
    Ok(preopens)
}

/// An empty directory at `path` (a leftover of an earlier run is cleared).
fn fresh_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(path)
}

pub(super) fn setup(name: &str, source: Error) -> PodError {
    PodError::Setup {
        name: name.to_owned(),
        source: Box::new(source),
    }
}
