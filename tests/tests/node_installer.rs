//! deploy/node-installer/install.sh, the node installer's script, run against a node's root
//! in a temporary directory: it installs the shim, adds the runtime to containerd's config in
//! the config's own version, restarts containerd only when the config changed, and leaves a
//! config that already has the runtime alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use toml_edit::DocumentMut;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/node-installer/install.sh")
}

/// A node's root and a shim to install.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("host")).expect("host root");
        std::fs::write(dir.path().join("shim"), b"\x7fELF shim v1").expect("shim");
        Node { dir }
    }

    fn host(&self, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("host")
            .join(path.trim_start_matches('/'))
    }

    fn restarts(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("restarts"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn install(&self, env: &[(&str, &str)]) -> Output {
        let restart = format!(
            "echo restarted >> {}",
            self.dir.path().join("restarts").display()
        );
        Command::new("sh")
            .arg(script())
            .env("HOST_ROOT", self.dir.path().join("host"))
            .env("SHIM", self.dir.path().join("shim"))
            .env("RESTART_CONTAINERD", restart)
            .envs(env.iter().copied())
            .output()
            .expect("run install.sh")
    }

    fn config(&self) -> DocumentMut {
        let text =
            std::fs::read_to_string(self.host("/etc/containerd/config.toml")).expect("config");
        text.parse()
            .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
    }
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn runtime_type(config: &DocumentMut, cri_plugin: &str) -> Option<String> {
    value(
        config,
        &[
            "plugins",
            cri_plugin,
            "containerd",
            "runtimes",
            "wasmpod",
            "runtime_type",
        ],
    )
}

/// The annotations the wasmpod runtime passes into bundles: kubelet's container ports.
fn container_annotations(config: &DocumentMut, cri_plugin: &str) -> Vec<String> {
    let runtime = &config["plugins"][cri_plugin]["containerd"]["runtimes"]["wasmpod"];
    (runtime
        .get("container_annotations")
        .and_then(|a| a.as_array()))
    .map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
    .unwrap_or_default()
}

/// The string at `path` in `config`, if there is one.
fn value(config: &DocumentMut, path: &[&str]) -> Option<String> {
    let mut item = config.as_item();
    for key in path {
        item = item.get(key)?;
    }
    item.as_str().map(str::to_owned)
}

#[test]
fn a_bare_node_gets_the_shim_and_a_version_2_config_and_a_second_run_changes_nothing() {
    let node = Node::new();
    let said = ok(&node.install(&[]));
    assert!(said.contains("shim installed"), "{said}");
    let shim = node.host("/usr/local/bin/containerd-shim-wasmpod-v1");
    assert_eq!(std::fs::read(&shim).expect("shim"), b"\x7fELF shim v1");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&shim).expect("stat").permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    let config = node.config();
    assert_eq!(config["version"].as_integer(), Some(2));
    assert_eq!(
        runtime_type(&config, "io.containerd.grpc.v1.cri").as_deref(),
        Some("io.containerd.wasmpod.v1")
    );
    assert_eq!(
        container_annotations(&config, "io.containerd.grpc.v1.cri"),
        ["io.kubernetes.container.ports"]
    );
    assert_eq!(node.restarts(), 1);

    let before = std::fs::read(node.host("/etc/containerd/config.toml")).expect("config");
    let said = ok(&node.install(&[]));
    assert!(said.contains("shim already installed"), "{said}");
    assert!(said.contains("already has the wasmpod runtime"), "{said}");
    assert_eq!(
        std::fs::read(node.host("/etc/containerd/config.toml")).expect("config"),
        before
    );
    assert_eq!(node.restarts(), 1, "containerd restarted for nothing");

    // A new shim replaces the old one; the config is left alone.
    std::fs::write(node.dir.path().join("shim"), b"\x7fELF shim v2").expect("shim");
    let said = ok(&node.install(&[]));
    assert!(said.contains("shim installed"), "{said}");
    assert_eq!(std::fs::read(&shim).expect("shim"), b"\x7fELF shim v2");
    assert!(
        !node
            .host("/usr/local/bin/containerd-shim-wasmpod-v1.new")
            .exists()
    );
    assert_eq!(node.restarts(), 1);
}

#[test]
fn version_3_and_4_configs_get_the_cri_v1_runtime_table_and_keep_everything_else() {
    // containerd 2.0-2.2 read version 3, 2.3 version 4: both name the plugin the same way.
    for version in [3, 4] {
        a_recent_config_gets_the_cri_v1_runtime_table(version);
    }
}

fn a_recent_config_gets_the_cri_v1_runtime_table(version: u32) {
    let node = Node::new();
    let path = node.host("/etc/containerd/config.toml");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    let original = format!("version = {version}\n")
        + "\n[plugins.'io.containerd.cri.v1.runtime']\n  enable_selinux = false\n\n\
                    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  runtime_type = 'io.containerd.runc.v2'\n";
    std::fs::write(&path, &original).expect("config");
    ok(&node.install(&[]));
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(text.starts_with(&original), "{text}");
    let config = node.config();
    assert_eq!(
        runtime_type(&config, "io.containerd.cri.v1.runtime").as_deref(),
        Some("io.containerd.wasmpod.v1")
    );
    assert_eq!(
        container_annotations(&config, "io.containerd.cri.v1.runtime"),
        ["io.kubernetes.container.ports"]
    );
    assert_eq!(
        value(
            &config,
            &[
                "plugins",
                "io.containerd.cri.v1.runtime",
                "containerd",
                "runtimes",
                "runc",
                "runtime_type"
            ]
        )
        .as_deref(),
        Some("io.containerd.runc.v2")
    );
    assert_eq!(runtime_type(&config, "io.containerd.grpc.v1.cri"), None);
    assert_eq!(node.restarts(), 1);
}

#[test]
fn a_config_that_has_the_runtime_is_not_touched_nor_containerd_restarted() {
    let node = Node::new();
    let path = node.host("/etc/containerd/config.toml");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    let original = "version = 2\n[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.wasmpod]\n  runtime_type = 'io.containerd.wasmpod.v1'\n";
    std::fs::write(&path, original).expect("config");
    ok(&node.install(&[("RESTART_CONTAINERD", "false")]));
    assert_eq!(std::fs::read_to_string(&path).expect("config"), original);
}

#[test]
fn bad_settings_fail_with_one_line_and_change_nothing() {
    let node = Node::new();
    for (env, says) in [
        (("SHIM_DIR", "/usr/../../escape"), "must not contain '..'"),
        (
            ("SHIM", "/nonexistent/shim"),
            "SHIM /nonexistent/shim does not exist",
        ),
        (("HOST_ROOT", "/nonexistent/host"), "is not a directory"),
    ] {
        let out = node.install(&[env]);
        assert!(!out.status.success(), "{env:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{env:?}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(node.host("/")).expect("host").count(), 0);
    assert!(!node.dir.path().join("escape").exists());
    // A restart that fails is the installer's failure (the DaemonSet's init container retries).
    let out = node.install(&[("RESTART_CONTAINERD", "exit 3")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("restarting containerd failed"));
}
