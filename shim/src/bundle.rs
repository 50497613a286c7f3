//! A containerd bundle's OCI runtime spec (`config.json`) → what wasmpod creates for it.
//!
//! CRI marks the pod's infra container with `io.kubernetes.cri.container-type: sandbox`: it
//! becomes the wasmpod [`Sandbox`](wasmpod::Sandbox) (hostname, the pod's name, namespace and uid
//! from the `io.kubernetes.cri.sandbox-*` annotations, the network namespace path from
//! `linux.namespaces`, the cgroup from `linux.cgroupsPath`); its pause binary never runs.
//! Every other container is a Wasm container: `process.args[0]` names its module, relative to the
//! rootfs (when the rootfs has no such file, the image's Wasm OCI layer is the module: see
//! [`crate::layers`]); `process.args`, `env` and `cwd` are what the guest sees; bind mounts of directories
//! become preopened volumes (that is how kubelet hands over emptyDir, hostPath, configMap...);
//! `linux.resources` gives the memory and CPU limits. A container without CRI annotations
//! (`ctr run`) is a pod of its own.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Spec};
use wasmpod::spec::{ContainerSpec, HostPathType, MountSpec, VolumeSource, VolumeSpec};

use crate::error::TaskError;

/// `io.kubernetes.cri.container-type`: `sandbox` or `container`.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// `io.kubernetes.cri.sandbox-id`: the pod sandbox a container belongs to.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// `io.kubernetes.cri.sandbox-name`: the pod's name.
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
/// `io.kubernetes.cri.sandbox-namespace`: the pod's namespace.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// `io.kubernetes.cri.sandbox-uid`: the pod's uid.
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
/// `io.kubernetes.cri.container-name`: the container's name in the pod.
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// `io.kubernetes.cri.image-name`: the image the container was created from.
pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
/// `io.kubernetes.container.ports`: kubelet's JSON of the container's `ports`, passed into the
/// bundle when the runtime's `container_annotations` allow it (deploy/): where a `wasi:http`
/// service listens.
pub const CONTAINER_PORTS: &str = "io.kubernetes.container.ports";

/// Guest paths never given a directory bind mount: the kernel's pseudo filesystems, which a
/// Wasm guest has no use for (files are bound there: the termination log is
/// `/dev/termination-log`).
const SKIPPED_DESTINATIONS: [&str; 3] = ["/dev", "/proc", "/sys"];

/// The pod sandbox a bundle describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRequest {
    /// The sandbox (task) id.
    pub id: String,
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's uid.
    pub uid: String,
    /// The hostname every container sees.
    pub hostname: String,
    /// The network namespace to join (`linux.namespaces[type=network].path`).
    pub netns: Option<PathBuf>,
    /// `linux.cgroupsPath`, as CRI wrote it (cgroupfs or systemd form).
    pub cgroups_path: Option<String>,
}

/// A Wasm container a bundle describes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRequest {
    /// The container (task) id; also its name in the wasmpod sandbox (kubelet reuses names
    /// across restarts, ids never).
    pub id: String,
    /// The pod sandbox it joins; `None` for a container that is a pod of its own.
    pub sandbox_id: Option<String>,
    /// Its name in the pod (`io.kubernetes.cri.container-name`), when CRI made it.
    pub name: Option<String>,
    /// The container: module, argv, env, mounts, limits.
    pub spec: ContainerSpec,
    /// The bind mounts of directories it brings, as hostPath volumes its mounts refer to.
    pub volumes: Vec<VolumeSpec>,
    /// The bind mounts of files (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, the
    /// termination log, configMap items with `subPath`): mounted onto its rootfs.
    pub file_binds: Vec<FileBind>,
    /// `process.args[0]`, as given.
    pub module_arg: String,
    /// The spec's hostname, for a container that is a pod of its own.
    pub hostname: Option<String>,
}

impl ContainerRequest {
    /// The sandbox of a container that is a pod of its own (`ctr run`).
    pub fn standalone_sandbox(&self, namespace: &str) -> SandboxRequest {
        SandboxRequest {
            id: self.id.clone(),
            name: self.id.clone(),
            namespace: namespace.to_owned(),
            uid: self.id.clone(),
            hostname: self.hostname.clone().unwrap_or_else(|| self.id.clone()),
            netns: None,
            cgroups_path: None,
        }
    }
}

/// A host file bind-mounted into a container's rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBind {
    /// The host file (kubelet's `etc-hosts`, a termination log...).
    pub source: PathBuf,
    /// Where the guest sees it: a path beneath the rootfs, without the leading `/`.
    pub destination: PathBuf,
    /// Mounted read-only (`ro`).
    pub read_only: bool,
}

/// What a bundle is.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// The pod's infra container.
    Sandbox(SandboxRequest),
    /// A Wasm container.
    Container(Box<ContainerRequest>),
}

/// Reads `bundle/config.json`.
pub fn load(id: &str, bundle: &Path) -> Result<TaskKind, TaskError> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| TaskError::InvalidSpec {
        id: id.to_owned(),
        message: format!("{}: {e}", path.display()),
    })?;
    parse(id, bundle, &spec)
}

/// The sandbox id a bundle's container groups under: its `io.kubernetes.cri.sandbox-id`
/// (the sandbox's own id for the sandbox), else its own id.
pub fn grouping(id: &str, bundle: &Path) -> String {
    Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|spec| annotation(&spec, SANDBOX_ID).map(str::to_owned))
        .unwrap_or_else(|| id.to_owned())
}

/// Interprets `spec`, the spec of task `id` in `bundle`.
pub fn parse(id: &str, bundle: &Path, spec: &Spec) -> Result<TaskKind, TaskError> {
    if annotation(spec, CONTAINER_TYPE) == Some("sandbox") {
        return sandbox(id, spec).map(TaskKind::Sandbox);
    }
    container(id, bundle, spec).map(|c| TaskKind::Container(Box::new(c)))
}

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.annotations()
        .as_ref()
        .and_then(|a: &HashMap<String, String>| a.get(key))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn sandbox(id: &str, spec: &Spec) -> Result<SandboxRequest, TaskError> {
    let name = annotation(spec, SANDBOX_NAME).unwrap_or(id).to_owned();
    let linux = spec.linux().as_ref();
    let netns = linux
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|namespaces| {
            namespaces
                .iter()
                .find(|ns| ns.typ() == LinuxNamespaceType::Network)
        })
        .and_then(|ns| ns.path().clone())
        .filter(|p| !p.as_os_str().is_empty());
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    if let Some(path) = &cgroups_path
        && cgroup_location(path).is_none()
    {
        // Refused rather than run without the cgroup containerd asked for.
        return Err(TaskError::InvalidSpec {
            id: id.to_owned(),
            message: format!("linux.cgroupsPath {path:?} leads out of the cgroup2 mount"),
        });
    }
    Ok(SandboxRequest {
        id: id.to_owned(),
        hostname: spec
            .hostname()
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| name.clone()),
        namespace: annotation(spec, SANDBOX_NAMESPACE)
            .unwrap_or("default")
            .to_owned(),
        uid: annotation(spec, SANDBOX_UID).unwrap_or(id).to_owned(),
        name,
        netns,
        cgroups_path,
    })
}

fn container(id: &str, bundle: &Path, spec: &Spec) -> Result<ContainerRequest, TaskError> {
    let invalid = |message: String| TaskError::InvalidSpec {
        id: id.to_owned(),
        message,
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("the spec has no process".into()))?;
    let argv = process.args().clone().unwrap_or_default();
    let module_arg = argv
        .first()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("process.args is empty: args[0] must name a .wasm module".into()))?
        .clone();
    let relative = Path::new(module_arg.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(invalid(format!(
            "process.args[0] {module_arg:?} must be a path inside the rootfs"
        )));
    }
    let root = spec
        .root()
        .as_ref()
        .map_or_else(|| PathBuf::from("rootfs"), |r| r.path().clone());
    let rootfs = bundle.join(root);

    let env = process
        .env()
        .iter()
        .flatten()
        .filter_map(|entry| entry.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let cwd = process.cwd().to_string_lossy().into_owned();
    let working_dir = (!cwd.is_empty() && cwd != "/").then_some(cwd);

    let BindMounts {
        volumes,
        mounts,
        files: file_binds,
    } = bind_mounts(id, spec).map_err(invalid)?;
    let (memory_limit, cpu_limit) =
        limits(spec.linux().as_ref().and_then(|l| l.resources().as_ref()));

    // The module is read beneath the rootfs: the image's own links never lead out of it.
    let mut container = ContainerSpec::new(id, relative);
    container.rootfs = Some(rootfs);
    container.read_only_rootfs = spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true));
    container.image = annotation(spec, IMAGE_NAME)
        .unwrap_or(&module_arg)
        .to_owned();
    container.argv = argv;
    container.env = env;
    container.working_dir = working_dir;
    container.mounts = mounts;
    container.resources.memory_limit = memory_limit;
    container.resources.memory_request = memory_limit;
    container.resources.cpu_limit = cpu_limit;
    container.resources.cpu_request = cpu_limit;
    container.ports = container_ports(annotation(spec, CONTAINER_PORTS));
    Ok(ContainerRequest {
        id: id.to_owned(),
        sandbox_id: annotation(spec, SANDBOX_ID).map(str::to_owned),
        name: annotation(spec, CONTAINER_NAME).map(str::to_owned),
        spec: container,
        volumes,
        file_binds,
        module_arg,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
    })
}

/// The TCP `containerPort`s of kubelet's ports annotation, in order. The annotation is
/// kubelet's own, so one it wrote differently is ignored (with a warning), not a failure.
fn container_ports(json: Option<&str>) -> Vec<u16> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Port {
        container_port: u16,
        protocol: Option<String>,
    }
    let Some(json) = json else {
        return Vec::new();
    };
    match serde_json::from_str::<Vec<Port>>(json) {
        Ok(ports) => ports
            .into_iter()
            .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
            .map(|p| p.container_port)
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "ignoring the {CONTAINER_PORTS} annotation");
            Vec::new()
        }
    }
}

/// `(memory limit in bytes, CPU limit in millicores)` of OCI `resources`: `memory.limit`, and
/// `cpu.quota` over `cpu.period` (CFS); a missing, zero or negative (unlimited) value is none.
pub fn limits(resources: Option<&LinuxResources>) -> (Option<u64>, Option<u64>) {
    let memory_limit = resources
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .and_then(|limit| u64::try_from(limit).ok())
        .filter(|limit| *limit > 0);
    let cpu_limit = resources.and_then(|r| r.cpu().as_ref()).and_then(|cpu| {
        let quota = u64::try_from(cpu.quota()?).ok().filter(|q| *q > 0)?;
        let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
        Some((quota.saturating_mul(1000) / period).max(1))
    });
    (memory_limit, cpu_limit)
}

/// A spec's bind mounts, sorted out.
#[derive(Debug, Default)]
struct BindMounts {
    volumes: Vec<VolumeSpec>,
    mounts: Vec<MountSpec>,
    files: Vec<FileBind>,
}

/// The spec's bind mounts: of directories, as hostPath volumes (named after the container, so
/// containers never clash) and mounts of them; of files, as binds onto the rootfs. Pseudo
/// filesystems (`proc`, `sysfs`, `/dev`'s tmpfs...) are left out, and so are directory binds
/// beneath `/dev`, `/proc` and `/sys`.
fn bind_mounts(id: &str, spec: &Spec) -> Result<BindMounts, String> {
    let mut binds = BindMounts::default();
    let BindMounts {
        volumes,
        mounts,
        files,
    } = &mut binds;
    for mount in spec.mounts().iter().flatten() {
        let options = mount.options().clone().unwrap_or_default();
        let is_bind = mount.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        let destination = mount.destination().to_string_lossy().into_owned();
        let Some(source) = mount.source().clone().filter(|_| is_bind) else {
            continue;
        };
        let read_only = options.iter().any(|o| o == "ro");
        if source.is_file() {
            let mut relative = PathBuf::new();
            for component in Path::new(&destination).components() {
                match component {
                    Component::Normal(name) => relative.push(name),
                    Component::RootDir | Component::CurDir => {}
                    _ => {
                        return Err(format!(
                            "mount destination {destination:?} must not contain `..`"
                        ));
                    }
                }
            }
            if relative.as_os_str().is_empty() {
                return Err(format!("mount destination {destination:?} is no file path"));
            }
            files.push(FileBind {
                source,
                destination: relative,
                read_only,
            });
            continue;
        }
        let skipped = SKIPPED_DESTINATIONS
            .iter()
            .any(|d| Path::new(&destination).starts_with(d));
        if skipped || !source.is_dir() {
            tracing::debug!(container = id, source = %source.display(), destination, "bind mount left out");
            continue;
        }
        let name = format!("{id}-bind-{}", volumes.len());
        volumes.push(VolumeSpec {
            name: name.clone(),
            source: VolumeSource::HostPath {
                path: source,
                kind: HostPathType::Directory,
            },
        });
        mounts.push(MountSpec {
            volume: name,
            mount_path: destination,
            read_only,
            sub_path: None,
        });
    }
    Ok(binds)
}

/// Where a pod's cgroup goes: `(parent, name)`, the parent relative to the cgroup2 mount.
///
/// `linux.cgroupsPath` comes in two forms: cgroupfs (`/kubepods/burstable/pod<uid>/<id>`)
/// and systemd (`kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`, whose parent slice
/// expands to `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice` and
/// whose unit is `cri-containerd-<id>.scope`).
///
/// `None` for a path with no name, or one that would lead out of the cgroup2 mount: the
/// parent must be plain directory names (no `..`) and the name one of them.
pub fn cgroup_location(cgroups_path: &str) -> Option<(PathBuf, String)> {
    let (parent, name) = cgroup_location_of(cgroups_path)?;
    let plain = |path: &Path| path.components().all(|c| matches!(c, Component::Normal(_)));
    let one_name = Path::new(&name).file_name() == Some(name.as_ref());
    (plain(&parent) && one_name).then_some((parent, name))
}

/// [`cgroup_location`] before the check that it stays beneath the mount.
fn cgroup_location_of(cgroups_path: &str) -> Option<(PathBuf, String)> {
    let parts: Vec<&str> = cgroups_path.split(':').collect();
    if let [slice, prefix, name] = parts.as_slice() {
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        return Some((expand_slice(slice), unit));
    }
    let path = Path::new(cgroups_path);
    let name = path.file_name()?.to_string_lossy().into_owned();
    let parent = path
        .parent()
        .map(|p| p.strip_prefix("/").unwrap_or(p).to_owned())
        .unwrap_or_default();
    Some((parent, name))
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`; empty → `system.slice`; `-.slice` → the
/// root.
fn expand_slice(slice: &str) -> PathBuf {
    if slice.is_empty() {
        return PathBuf::from("system.slice");
    }
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| *s != "-") else {
        return PathBuf::new();
    };
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("valid spec")
    }

    fn sandbox_spec() -> Spec {
        spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "hostname": "web-0",
            "root": {"path": "rootfs", "readonly": true},
            "process": {"args": ["/pause"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "annotations": {
                "io.kubernetes.cri.container-type": "sandbox",
                "io.kubernetes.cri.sandbox-id": "sb1",
                "io.kubernetes.cri.sandbox-name": "web-0",
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.sandbox-uid": "u-1"
            },
            "linux": {
                "cgroupsPath": "/kubepods/besteffort/podu-1/sb1",
                "namespaces": [
                    {"type": "pid"},
                    {"type": "network", "path": "/var/run/netns/cni-1"}
                ]
            }
        }))
    }

    #[test]
    fn ports_come_from_kubelets_annotation() {
        let json = r#"[{"name":"http","containerPort":8080,"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"},{"containerPort":9090}]"#;
        assert_eq!(container_ports(Some(json)), vec![8080, 9090]);
        assert_eq!(container_ports(Some("not json")), Vec::<u16>::new());
        assert_eq!(container_ports(None), Vec::<u16>::new());
    }

    #[test]
    fn sandbox_from_cri_annotations() {
        let kind = parse("sb1", Path::new("/b"), &sandbox_spec()).expect("parse");
        assert_eq!(
            kind,
            TaskKind::Sandbox(SandboxRequest {
                id: "sb1".into(),
                name: "web-0".into(),
                namespace: "shop".into(),
                uid: "u-1".into(),
                hostname: "web-0".into(),
                netns: Some("/var/run/netns/cni-1".into()),
                cgroups_path: Some("/kubepods/besteffort/podu-1/sb1".into()),
            })
        );
    }

    #[test]
    fn container_from_process_mounts_and_resources() {
        let volume = tempfile::tempdir().expect("tempdir");
        let source = volume.path().to_str().expect("utf-8");
        let hosts = volume.path().join("etc-hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("hosts");
        let spec = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {
                "args": ["/app.wasm", "--port", "80"],
                "env": ["PATH=/bin", "GREETING=a=b", "BROKEN"],
                "cwd": "/data",
                "user": {"uid": 0, "gid": 0}
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": source, "options": ["rbind", "rw"]},
                {"destination": "/config", "source": source, "options": ["rbind", "ro"]},
                {"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind"]},
                {"destination": "/dev/termination-log", "type": "bind", "source": hosts, "options": ["rbind", "ro"]},
                {"destination": "/dev/shm", "type": "bind", "source": source, "options": ["rbind"]}
            ],
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-id": "sb1",
                "io.kubernetes.cri.image-name": "example.com/app:1"
            },
            "linux": {"resources": {
                "memory": {"limit": 67108864},
                "cpu": {"quota": 50000, "period": 100000}
            }}
        }));
        let TaskKind::Container(c) = parse("c1", Path::new("/b"), &spec).expect("parse") else {
            panic!("not a container");
        };
        assert_eq!(c.sandbox_id.as_deref(), Some("sb1"));
        assert_eq!(c.module_arg, "/app.wasm");
        assert_eq!(c.spec.name, "c1");
        assert_eq!(c.spec.image, "example.com/app:1");
        assert_eq!(c.spec.module, Path::new("app.wasm"));
        assert_eq!(c.spec.rootfs.as_deref(), Some(Path::new("/b/rootfs")));
        assert_eq!(c.spec.argv, ["/app.wasm", "--port", "80"]);
        assert_eq!(
            c.spec.env,
            [
                ("PATH".to_owned(), "/bin".to_owned()),
                ("GREETING".to_owned(), "a=b".to_owned())
            ]
        );
        assert_eq!(c.spec.working_dir.as_deref(), Some("/data"));
        assert_eq!(c.spec.resources.memory_limit, Some(64 << 20));
        assert_eq!(c.spec.resources.cpu_limit, Some(500));
        let mounts: Vec<_> = c
            .spec
            .mounts
            .iter()
            .map(|m| (m.volume.as_str(), m.mount_path.as_str(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            [
                ("c1-bind-0", "/data", false),
                ("c1-bind-1", "/config", true)
            ]
        );
        assert_eq!(c.volumes.len(), 2);
        assert_eq!(
            c.volumes[0].source,
            VolumeSource::HostPath {
                path: volume.path().to_owned(),
                kind: HostPathType::Directory
            }
        );
        // Files are bound onto the rootfs, `/dev` included; the `/dev/shm` directory is not.
        assert_eq!(
            c.file_binds,
            [
                FileBind {
                    source: hosts.clone(),
                    destination: "etc/hosts".into(),
                    read_only: false
                },
                FileBind {
                    source: hosts,
                    destination: "dev/termination-log".into(),
                    read_only: true
                }
            ]
        );
        assert!(!c.spec.read_only_rootfs);
    }

    #[test]
    fn a_file_bind_never_climbs_out_of_the_rootfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("file");
        let spec = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "process": {"args": ["/app.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [
                {"destination": "/etc/../../../tmp/x", "type": "bind", "source": file, "options": ["rbind"]}
            ]
        }));
        let error = parse("c1", Path::new("/b"), &spec).expect_err("refused");
        assert!(
            error.to_string().contains("must not contain `..`"),
            "{error}"
        );
    }

    #[test]
    fn standalone_container_is_its_own_pod() {
        let spec = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "hostname": "box",
            "process": {"args": ["hello.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        }));
        let TaskKind::Container(c) = parse("c1", Path::new("/b"), &spec).expect("parse") else {
            panic!("not a container");
        };
        assert_eq!(c.sandbox_id, None);
        assert_eq!(c.spec.working_dir, None);
        assert_eq!(c.spec.module, Path::new("hello.wasm"));
        assert_eq!(c.spec.rootfs.as_deref(), Some(Path::new("/b/rootfs")));
        let sandbox = c.standalone_sandbox("default");
        assert_eq!(sandbox.id, "c1");
        assert_eq!(sandbox.hostname, "box");
        assert_eq!(sandbox.netns, None);
    }

    #[test]
    fn container_without_module_is_invalid() {
        for args in [serde_json::json!([]), serde_json::json!(["/../etc/x.wasm"])] {
            let spec = spec(serde_json::json!({
                "ociVersion": "1.0.2",
                "process": {"args": args, "cwd": "/", "user": {"uid": 0, "gid": 0}},
            }));
            let error = parse("c1", Path::new("/b"), &spec).expect_err("invalid");
            assert!(matches!(error, TaskError::InvalidSpec { .. }), "{error:?}");
        }
    }

    #[test]
    fn load_reports_a_missing_spec() {
        let bundle = tempfile::tempdir().expect("tempdir");
        let error = load("c1", bundle.path()).expect_err("no config.json");
        assert!(error.to_string().contains("config.json"), "{error}");
        assert_eq!(grouping("c1", bundle.path()), "c1");
    }

    #[test]
    fn grouping_follows_the_sandbox_id() {
        let bundle = tempfile::tempdir().expect("tempdir");
        let json = serde_json::to_string(&sandbox_spec()).expect("json");
        std::fs::write(bundle.path().join("config.json"), json).expect("write");
        assert_eq!(grouping("sb1", bundle.path()), "sb1");
    }

    #[test]
    fn cgroup_locations() {
        assert_eq!(
            cgroup_location("/kubepods/besteffort/podu-1/sb1"),
            Some(("kubepods/besteffort/podu-1".into(), "sb1".into()))
        );
        assert_eq!(
            cgroup_location("kubepods-besteffort-podu_1.slice:cri-containerd:sb1"),
            Some((
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu_1.slice".into(),
                "cri-containerd-sb1.scope".into()
            ))
        );
        assert_eq!(
            cgroup_location(":cri-containerd:sb1"),
            Some(("system.slice".into(), "cri-containerd-sb1.scope".into()))
        );
        assert_eq!(
            cgroup_location("-.slice::sb1"),
            Some((PathBuf::new(), "sb1.scope".into()))
        );
        assert_eq!(cgroup_location("sb1"), Some((PathBuf::new(), "sb1".into())));
    }

    #[test]
    fn cgroup_locations_stay_beneath_the_mount() {
        // The bundle fuzz target checks this (inputs kept as fuzz/corpus/bundle/cgroup-*): the
        // host layer joins a location to the cgroup2 mount, so `..` used to lead anywhere on
        // the host.
        for path in [
            "/kubepods/../../../etc/sb1",
            "/..",
            "../sb1",
            "kubepods.slice:cri-containerd:../../../etc/x",
            "kubepods.slice:cri-containerd:a/b",
            "/x.slice:cri-containerd:sb1",
        ] {
            assert_eq!(cgroup_location(path), None, "{path}");
        }
        // A sandbox whose cgroupsPath leads out is refused, not run without its cgroup.
        let mut json = serde_json::to_value(sandbox_spec()).expect("json");
        json["linux"]["cgroupsPath"] = "/kubepods/../../etc/sb1".into();
        let error = parse("sb1", Path::new("/b"), &spec(json)).expect_err("refused");
        assert!(
            error.to_string().contains("leads out of the cgroup2 mount"),
            "{error}"
        );
    }
}
