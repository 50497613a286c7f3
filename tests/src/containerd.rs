//! A private containerd for end-to-end tests of `containerd-shim-wasmpod-v1`, and a CRI client
//! that drives it as kubelet does.
//!
//! [`Containerd::start`] runs Debian's containerd on a config of its own under a temp dir
//! (root, state, sockets, CNI), with `target/debug` first on its `PATH` so it finds the shim,
//! and the runtime `wasmpod` (`io.containerd.wasmpod.v1`) in its CRI plugin. There is no
//! network and no registry here: images are built with [`wasmpod::oci`] and imported with
//! `ctr images import`, the pause image too (the shim never runs it), and the CNI plugin is a
//! stand-in script that reports a link-local address (containerd's CRI plugin still makes
//! each pod's network namespace, which the shim joins). Dropping it stops and removes every
//! pod, kills the processes it started (by pid), unmounts what is left under its dir and
//! removes the dir.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{self as cri, ContainerState, PodSandboxState};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::DEADLINE;

/// The runtime type the shim serves.
pub const RUNTIME: &str = "io.containerd.wasmpod.v1";
/// The CRI runtime handler (RuntimeClass `handler`) configured for it.
pub const HANDLER: &str = "wasmpod";
/// The shim's binary.
pub const SHIM: &str = "containerd-shim-wasmpod-v1";
/// The pause image configured as the sandbox image.
pub const PAUSE_IMAGE: &str = "wasmpod.test/pause:1";
/// containerd's namespace for CRI.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// The stand-in CNI plugin: containerd's CRI plugin only checks that the pod's `eth0` got an
/// address; there is no network to give it here.
const CNI_PLUGIN: &str = r#"#!/bin/sh
# wasmpod test CNI plugin: reports an address, changes nothing.
conf=$(cat)
ver=$(printf '%s' "$conf" | sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p')
case "$CNI_COMMAND" in
ADD)
  if [ "$CNI_IFNAME" = "lo" ]; then addr=127.0.0.1/8; else addr=169.254.77.2/32; fi
  printf '{"cniVersion":"%s","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","interface":0,"address":"%s"}]}' \
    "$ver" "$CNI_IFNAME" "$CNI_NETNS" "$addr"
  ;;
VERSION)
  printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}'
  ;;
esac
"#;

/// Where the shim is: `$WASMPOD_TEST_BIN_DIR` (e.g. `target/release`, to benchmark a release
/// shim), else where cargo put this test's binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMPOD_TEST_BIN_DIR").filter(|d| !d.is_empty()) {
        return std::path::absolute(dir).expect("absolute path");
    }
    crate::wasmpod_bin()
        .parent()
        .expect("target directory")
        .to_owned()
}

/// The path of `program` on `PATH`; the test fails with how to install it when missing.
pub fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: these tests need Debian's containerd and runc \
                 (apt-get install -y containerd runc; .ci/run installs them)"
            )
        })
}

/// The major version of the containerd binary at `containerd` (`containerd --version` prints
/// e.g. `containerd github.com/containerd/containerd/v2 2.1.9+unknown`).
pub fn major_version(containerd: &Path) -> u32 {
    let out = Command::new(containerd)
        .arg("--version")
        .output()
        .expect("containerd --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|version| {
            version
                .trim_start_matches('v')
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("cannot read a version in {text:?}"))
}

/// The OCI spec CRI writes for pod sandbox `id` named `name` (its pause container), as a
/// shim's bundle `config.json` holds it.
pub fn sandbox_spec(id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["/pause"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "annotations": {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-id": id,
            "io.kubernetes.cri.sandbox-name": name
        }
    })
}

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// A containerd of the test's own.
#[derive(Debug)]
pub struct Containerd {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

impl Containerd {
    /// Starts containerd on a private config and waits until it serves.
    pub fn start() -> Containerd {
        let containerd = require("containerd");
        require("ctr");
        let shim = bin_dir().join(SHIM);
        assert!(
            shim.is_file(),
            "{} is missing: run the tests with `cargo test --workspace`",
            shim.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("wasmpod-ctd-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        let cni_bin = root.join("cni/bin");
        let cni_conf = root.join("cni/conf");
        for d in [&cni_bin, &cni_conf] {
            std::fs::create_dir_all(d).expect("create dir");
        }
        let plugin = cni_bin.join("wasmpod-test-net");
        std::fs::write(&plugin, CNI_PLUGIN).expect("write CNI plugin");
        std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod CNI plugin");
        std::os::unix::fs::symlink(&plugin, cni_bin.join("loopback")).expect("symlink");
        std::fs::write(
            cni_conf.join("10-wasmpod-test.conflist"),
            r#"{"cniVersion":"0.4.0","name":"wasmpod-test","plugins":[{"type":"wasmpod-test-net"}]}"#,
        )
        .expect("write CNI config");

        let socket = root.join("containerd.sock");
        // containerd 2.x reads config version 3 (it would migrate a version 2 file at every
        // start): each is written as deploy/ tells users to write it.
        let disabled = r#"["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]"#;
        let common = format!(
            r#"root = "{root}/root"
state = "{root}/state"
disabled_plugins = {disabled}
[grpc]
  address = "{socket}"
"#,
            root = root.display(),
            socket = socket.display(),
        );
        let (cni_bin, cni_conf) = (cni_bin.display(), cni_conf.display());
        let config = if major_version(&containerd) >= 2 {
            format!(
                r#"version = 3
{common}[plugins.'io.containerd.internal.v1.opt']
  path = "{root}/opt"
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{PAUSE_IMAGE}"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{HANDLER}]
    runtime_type = "{RUNTIME}"
    container_annotations = ["io.kubernetes.container.ports"]
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#,
                root = root.display(),
            )
        } else {
            format!(
                r#"version = 2
{common}[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}]
    runtime_type = "{RUNTIME}"
    container_annotations = ["io.kubernetes.container.ports"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#,
                root = root.display(),
            )
        };
        let config_path = root.join("config.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(root.join("containerd.log")).expect("log file");
        let path = std::env::join_paths(std::iter::once(bin_dir()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .expect("PATH");
        let mut child = Command::new(containerd)
            .arg("--config")
            .arg(&config_path)
            .env("PATH", path)
            .env("WASMPOD_STATE_DIR", root.join("wasmpod"))
            .env("WASMPOD_CACHE_DIR", cache_dir())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let log = || std::fs::read_to_string(root.join("containerd.log")).unwrap_or_default();
        let give_up = Instant::now() + DEADLINE;
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("containerd exited ({status}):\n{}", log());
            }
            if Instant::now() > give_up {
                let _ = child.kill();
                let _ = child.wait();
                panic!("containerd did not start within {DEADLINE:?}:\n{}", log());
            }
            // containerd raises no event a test can wait on before its socket exists.
            std::thread::sleep(Duration::from_millis(20));
        }
        // Worker threads drive the CRI connection, so clients on several threads (the churn
        // benchmark) can each block on a call at once.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let target = socket.clone();
        let channel = runtime.block_on(async move {
            Endpoint::from_static("http://[::]")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = target.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(socket).await?,
                        ))
                    }
                }))
                .await
        });
        let channel = match channel {
            Ok(channel) => channel,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cannot connect to containerd's CRI: {error}\n{}", log());
            }
        };
        Containerd {
            dir,
            socket,
            child,
            runtime,
            channel,
        }
    }

    /// containerd's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temp dir everything lives under.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the shim keeps pod directories for CRI pods.
    pub fn pod_state_dir(&self) -> PathBuf {
        self.dir.path().join("wasmpod").join(CRI_NAMESPACE)
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -n NAMESPACE ARGS`, to its end (the test fails at [`DEADLINE`]).
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> Ran {
        run_with_deadline(self.ctr_command(namespace, args), None)
    }

    /// [`Containerd::ctr`] with `input` on its stdin (then closed).
    pub fn ctr_with_input(&self, namespace: &str, args: &[&str], input: &[u8]) -> Ran {
        run_with_deadline(self.ctr_command(namespace, args), Some(input.to_vec()))
    }

    fn ctr_command(&self, namespace: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", namespace])
            .args(args);
        command
    }

    /// Writes `image` as an archive and imports it into `namespace`; returns its name.
    pub fn import(&self, namespace: &str, image: &wasmpod::oci::OciImage) -> String {
        self.import_with(namespace, image, &[])
    }

    /// Imports `image` with `ctr images import` and extra `flags` (`--no-unpack`...).
    pub fn import_with(
        &self,
        namespace: &str,
        image: &wasmpod::oci::OciImage,
        flags: &[&str],
    ) -> String {
        let images = self.dir.path().join("images");
        std::fs::create_dir_all(&images).expect("images dir");
        let archive = images.join(format!("{}.tar", image.name.replace(['/', ':'], "_")));
        image.write_archive(&archive).expect("write image archive");
        self.import_archive(namespace, &archive, flags);
        image.name.clone()
    }

    /// Imports the image archive at `archive` with `ctr images import` and extra `flags`.
    pub fn import_archive(&self, namespace: &str, archive: &Path, flags: &[&str]) {
        let archive = archive.to_str().expect("utf-8 path");
        let mut args = vec!["images", "import"];
        args.extend_from_slice(flags);
        args.push(archive);
        let ran = self.ctr(namespace, &args);
        assert_eq!(ran.code, 0, "ctr images import: {ran:?}");
    }

    /// Imports the image of `module` as `wasmpod.test/NAME:1` into `namespace`.
    pub fn import_module(&self, namespace: &str, module: &str, name: &str) -> String {
        let image =
            wasmpod::oci::OciImage::wasm(Path::new(module), &format!("wasmpod.test/{name}:1"))
                .expect("image of module");
        self.import(namespace, &image)
    }

    /// Imports the pause image CRI wants for every sandbox (a placeholder: never run).
    pub fn import_pause(&self) {
        let pause = wasmpod::oci::OciImage::new(PAUSE_IMAGE)
            .expect("name")
            .file("pause", "#!/bin/false\n", 0o755)
            .entrypoint(["/pause"]);
        self.import(CRI_NAMESPACE, &pause);
    }

    /// The containerd daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pids of the wasmpod shims this containerd started and that serve a pod.
    pub fn shim_pids(&self) -> Vec<u32> {
        self.processes_of_this_containerd()
            .into_iter()
            .filter(|(_, args)| {
                // A serving shim has its socket; `start`, `delete` and `-info` (containerd 2.x
                // runs it when a task is created) are short-lived invocations of the binary.
                args.first().is_some_and(|a| a.ends_with(SHIM))
                    && args.iter().any(|a| a == "-socket")
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Every process started with `-address` this containerd's socket (the shims of every
    /// runtime: wasmpod's and runc's), with its arguments.
    pub fn processes_of_this_containerd(&self) -> Vec<(u32, Vec<String>)> {
        let socket = self.socket.to_string_lossy().into_owned();
        let mut found = Vec::new();
        for (pid, dir) in processes() {
            let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args
                .windows(2)
                .any(|w| w[0] == "-address" && w[1] == socket)
            {
                found.push((pid, args));
            }
        }
        found
    }

    /// A CRI client on this containerd.
    pub fn cri(&self) -> Cri<'_> {
        Cri {
            containerd: self,
            client: RuntimeServiceClient::new(self.channel.clone()),
        }
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(async {
            tokio::time::timeout(DEADLINE, future)
                .await
                .unwrap_or_else(|_| {
                    // What containerd and the shims said last (they log into one file).
                    let log = self.log();
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
                    panic!("a CRI call did not answer within {DEADLINE:?}; containerd's log ends:\n{tail}")
                })
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Pods first, so their network namespaces, cgroups and mounts go the CRI way.
        let cri = self.cri();
        let pods = cri.try_list_pods().unwrap_or_default();
        for id in pods {
            let _ = cri.try_stop_pod(&id);
            let _ = cri.try_remove_pod(&id);
        }
        for pid in self.shim_pids() {
            kill("KILL", pid);
        }
        kill("TERM", self.child.id());
        let give_up = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() > give_up {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            // A process raises no event a test can wait on besides its exit; poll it.
            std::thread::sleep(Duration::from_millis(10));
        }
        for mount in mounts_under(self.dir.path()) {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
    }
}

/// Every process of the machine: its pid and its `/proc` directory.
pub fn processes() -> Vec<(u32, PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        })
        .collect()
}

/// Every mount point at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    mounts
}

/// The compile cache the tests' shims share (compiled modules outlive one test).
fn cache_dir() -> PathBuf {
    bin_dir().join("containerd-test-cache")
}

/// Sends `signal` to `pid`.
pub fn kill(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Whether process `pid` runs (a zombie waiting for its parent to reap it does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`: the state follows the last `)`.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

fn run_with_deadline(mut command: Command, input: Option<Vec<u8>>) -> Ran {
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A thread of its own: the child may read its input only as it goes.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            kill("KILL", pid);
            panic!("{command:?} did not finish within {DEADLINE:?}");
        }
    };
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A pod sandbox made through CRI.
#[derive(Debug, Clone)]
pub struct Pod {
    /// The sandbox id.
    pub id: String,
    /// Its config (CreateContainer takes it again, as from kubelet).
    pub config: cri::PodSandboxConfig,
    /// Where CRI writes its containers' logs.
    pub log_dir: PathBuf,
}

/// kubelet's annotation of a container's ports (pkg/kubelet/kuberuntime/labels.go).
fn ports_annotation(ports: &[u16]) -> std::collections::HashMap<String, String> {
    if ports.is_empty() {
        return Default::default();
    }
    let json: Vec<serde_json::Value> = (ports.iter())
        .map(|p| serde_json::json!({"containerPort": p, "protocol": "TCP"}))
        .collect();
    [(
        "io.kubernetes.container.ports".to_owned(),
        serde_json::Value::Array(json).to_string(),
    )]
    .into()
}

/// One container to create, as kubelet describes it.
#[derive(Debug, Clone, Default)]
pub struct ContainerDef {
    /// Its name in the pod.
    pub name: String,
    /// The image.
    pub image: String,
    /// `args` (after the image's entrypoint, the module).
    pub args: Vec<String>,
    /// Volumes: `(host path, container path, read-only)`.
    pub mounts: Vec<(PathBuf, String, bool)>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// `workingDir`.
    pub working_dir: Option<String>,
    /// `ports[].containerPort`, passed as kubelet passes them: the
    /// `io.kubernetes.container.ports` annotation.
    pub ports: Vec<u16>,
}

impl ContainerDef {
    /// Container `name` of `image` with `args`.
    pub fn new(name: &str, image: &str, args: &[&str]) -> Self {
        ContainerDef {
            name: name.into(),
            image: image.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..ContainerDef::default()
        }
    }

    /// Declares `containerPort: port` (TCP).
    pub fn port(mut self, port: u16) -> Self {
        self.ports.push(port);
        self
    }

    /// Adds a bind mount of `host` at `path`.
    pub fn mount(mut self, host: &Path, path: &str) -> Self {
        self.mounts.push((host.to_owned(), path.into(), false));
        self
    }

    /// Bind-mounts `host` (a directory or a file) read-only at `path`.
    pub fn mount_ro(mut self, host: &Path, path: &str) -> Self {
        self.mounts.push((host.to_owned(), path.into(), true));
        self
    }

    /// Sets the working directory.
    pub fn working_dir(mut self, dir: &str) -> Self {
        self.working_dir = Some(dir.into());
        self
    }
}

/// A container's status as CRI reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Its state.
    pub state: ContainerState,
    /// Its exit code.
    pub exit_code: i32,
    /// CRI's reason (`Completed`, `Error`, `OOMKilled`).
    pub reason: String,
    /// Its log file.
    pub log_path: PathBuf,
}

/// The CRI API of a [`Containerd`], as kubelet uses it.
#[derive(Debug)]
pub struct Cri<'a> {
    containerd: &'a Containerd,
    client: RuntimeServiceClient<Channel>,
}

impl Cri<'_> {
    /// RunPodSandbox with `runtime_handler: wasmpod`.
    pub fn run_pod(&self, name: &str, cgroup_parent: Option<&str>) -> Pod {
        self.run_pod_on(HANDLER, name, cgroup_parent)
    }

    /// RunPodSandbox with runtime handler `handler` (`wasmpod`, or `runc` for native pods).
    pub fn run_pod_on(&self, handler: &str, name: &str, cgroup_parent: Option<&str>) -> Pod {
        let log_dir = self.containerd.dir().join("pods").join(name);
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: log_dir.to_string_lossy().into_owned(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.unwrap_or_default().into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut client = self.client.clone();
        let request = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        let id = self
            .containerd
            .block_on(client.run_pod_sandbox(request))
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", self.containerd.log()))
            .into_inner()
            .pod_sandbox_id;
        Pod {
            id,
            config,
            log_dir,
        }
    }

    /// CreateContainer.
    pub fn create_container(&self, pod: &Pod, def: &ContainerDef) -> Result<String, tonic::Status> {
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: def.name.clone(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: def.image.clone(),
                ..Default::default()
            }),
            args: def.args.clone(),
            annotations: ports_annotation(&def.ports),
            working_dir: def.working_dir.clone().unwrap_or_default(),
            log_path: format!("{}.log", def.name),
            mounts: def
                .mounts
                .iter()
                .map(|(host, path, readonly)| cri::Mount {
                    host_path: host.to_string_lossy().into_owned(),
                    container_path: path.clone(),
                    readonly: *readonly,
                    ..Default::default()
                })
                .collect(),
            linux: Some(cri::LinuxContainerConfig {
                resources: def.memory_limit.map(|limit| cri::LinuxContainerResources {
                    memory_limit_in_bytes: limit,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut client = self.client.clone();
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        self.containerd
            .block_on(client.create_container(request))
            .map(|r| r.into_inner().container_id)
    }

    /// StartContainer.
    pub fn start_container(&self, id: &str) -> Result<(), tonic::Status> {
        let mut client = self.client.clone();
        let request = cri::StartContainerRequest {
            container_id: id.into(),
        };
        self.containerd
            .block_on(client.start_container(request))
            .map(drop)
    }

    /// CreateContainer + StartContainer; the test fails on an error.
    pub fn run_container(&self, pod: &Pod, def: &ContainerDef) -> String {
        let id = self
            .create_container(pod, def)
            .unwrap_or_else(|e| panic!("CreateContainer {}: {e}", def.name));
        self.start_container(&id)
            .unwrap_or_else(|e| panic!("StartContainer {}: {e}", def.name));
        id
    }

    /// ContainerStatus.
    pub fn status(&self, id: &str) -> Status {
        let mut client = self.client.clone();
        let request = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        let status = self
            .containerd
            .block_on(client.container_status(request))
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"))
            .into_inner()
            .status
            .expect("a status");
        Status {
            state: status.state(),
            exit_code: status.exit_code,
            reason: status.reason,
            log_path: PathBuf::from(status.log_path),
        }
    }

    /// Waits until container `id` exited; the test fails at [`DEADLINE`].
    pub fn wait_exited(&self, id: &str) -> Status {
        let give_up = Instant::now() + DEADLINE;
        loop {
            let status = self.status(id);
            if status.state == ContainerState::ContainerExited {
                return status;
            }
            assert!(
                Instant::now() < give_up,
                "container {id} still {:?} after {DEADLINE:?}",
                status.state
            );
            // CRI raises no event a client can wait on; poll as kubelet's PLEG does.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// UpdateContainerResources, as kubelet resizes a container in place: its memory limit
    /// in bytes.
    pub fn update_memory_limit(&self, id: &str, bytes: i64) -> Result<(), tonic::Status> {
        let mut client = self.client.clone();
        let request = cri::UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: bytes,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.containerd
            .block_on(client.update_container_resources(request))
            .map(drop)
    }

    /// StopContainer with a grace period of `timeout` seconds.
    pub fn stop_container(&self, id: &str, timeout: i64) {
        let mut client = self.client.clone();
        let request = cri::StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        self.containerd
            .block_on(client.stop_container(request))
            .unwrap_or_else(|e| panic!("StopContainer {id}: {e}"));
    }

    /// ExecSync: runs `cmd` in container `id`, `timeout` seconds at most (0: none).
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse, tonic::Status> {
        let mut client = self.client.clone();
        let request = cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|c| c.to_string()).collect(),
            timeout,
        };
        self.containerd
            .block_on(client.exec_sync(request))
            .map(tonic::Response::into_inner)
    }

    /// ContainerStats: `(cpu nanoseconds, memory working set bytes)`.
    pub fn stats(&self, id: &str) -> (u64, u64) {
        let mut client = self.client.clone();
        let request = cri::ContainerStatsRequest {
            container_id: id.into(),
        };
        let stats = self
            .containerd
            .block_on(client.container_stats(request))
            .unwrap_or_else(|e| panic!("ContainerStats {id}: {e}"))
            .into_inner()
            .stats
            .expect("stats");
        let cpu = stats
            .cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .map_or(0, |v| v.value);
        let memory = stats
            .memory
            .and_then(|m| m.working_set_bytes)
            .map_or(0, |v| v.value);
        (cpu, memory)
    }

    /// PodSandboxStatus's state.
    pub fn pod_state(&self, pod: &Pod) -> PodSandboxState {
        let mut client = self.client.clone();
        let request = cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: false,
        };
        self.containerd
            .block_on(client.pod_sandbox_status(request))
            .unwrap_or_else(|e| panic!("PodSandboxStatus: {e}"))
            .into_inner()
            .status
            .expect("a status")
            .state()
    }

    /// StopPodSandbox.
    pub fn stop_pod(&self, pod: &Pod) {
        self.try_stop_pod(&pod.id)
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", self.containerd.log()));
    }

    /// RemovePodSandbox.
    pub fn remove_pod(&self, pod: &Pod) {
        self.try_remove_pod(&pod.id)
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", self.containerd.log()));
    }

    fn try_stop_pod(&self, id: &str) -> Result<(), tonic::Status> {
        let mut client = self.client.clone();
        let request = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.containerd
            .block_on(client.stop_pod_sandbox(request))
            .map(drop)
    }

    fn try_remove_pod(&self, id: &str) -> Result<(), tonic::Status> {
        let mut client = self.client.clone();
        let request = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.containerd
            .block_on(client.remove_pod_sandbox(request))
            .map(drop)
    }

    fn try_list_pods(&self) -> Result<Vec<String>, tonic::Status> {
        let mut client = self.client.clone();
        let request = cri::ListPodSandboxRequest { filter: None };
        let pods = self
            .containerd
            .block_on(client.list_pod_sandbox(request))?
            .into_inner()
            .items;
        Ok(pods.into_iter().map(|p| p.id).collect())
    }
}

/// The lines of a CRI log file, partial records joined: `(stream, line)`.
pub fn log_lines(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = Vec::new();
    let mut pending: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(_time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let content = parts.next().unwrap_or_default();
        let slot = pending.entry(stream.to_owned()).or_default();
        slot.push_str(content);
        if tag == "F" {
            lines.push((stream.to_owned(), std::mem::take(slot)));
        }
    }
    lines
}
