//! Helpers for wasmpod's end-to-end tests: run the `wasmpod` binary as a user does, on
//! manifests written into a temp dir, with private state and cache directories.

pub mod cgroup;
pub mod containerd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one `wasmpod` invocation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `wasmpod` binary cargo built next to this test.
pub fn wasmpod_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory of the test executable");
    let bin = dir.join("wasmpod");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// A private wasmpod setup: its own state dir, cache dir and manifests dir.
#[derive(Debug)]
pub struct Wasmpod {
    /// Holds `state/`, `cache/` and the manifests.
    pub root: tempfile::TempDir,
}

/// What one `wasmpod` invocation did.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit code.
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Outcome {
    /// The final `PodStatus` printed by `-o json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The lines a container printed, as `wasmpod run` streams them (`[name] line`).
    pub fn lines_of(&self, container: &str) -> Vec<String> {
        let prefix = format!("[{container}] ");
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }
}

impl Default for Wasmpod {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Wasmpod {
    /// A `wasmpod` killed at a test's deadline leaves its host layer behind (its cgroup, its
    /// veth, `medium: Memory` emptyDirs in /dev/shm): clean up after dead pod processes in
    /// this private state directory, as the next `wasmpod` start in it would.
    fn drop(&mut self) {
        for dir in wasmpod::host::recover(&self.state_dir()) {
            eprintln!("cleaned up after a dead pod process: {}", dir.display());
        }
    }
}

impl Wasmpod {
    /// A fresh setup.
    pub fn new() -> Self {
        Wasmpod {
            root: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The state directory (`--state-dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// The compile cache directory (`--cache-dir`).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// Writes `manifest` as `name` in the setup and returns its path.
    pub fn manifest(&self, name: &str, manifest: &str) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::write(&path, manifest).expect("write manifest");
        path
    }

    /// `wasmpod <args>` with this setup's cache dir, to its end (or the test fails at
    /// [`DEADLINE`]).
    pub fn cmd(&self, args: &[&str]) -> Outcome {
        self.cmd_env(args, &[])
    }

    /// [`Wasmpod::cmd`] with extra environment variables.
    pub fn cmd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut command = Command::new(wasmpod_bin());
        command
            .args(args)
            .env("WASMPOD_CACHE_DIR", self.cache_dir())
            .env("WASMPOD_STATE_DIR", self.state_dir())
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().expect("spawn wasmpod");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output: Output = match rx.recv_timeout(DEADLINE) {
            Ok(output) => output.expect("wait for wasmpod"),
            Err(_) => {
                // End the process we started, by its pid, and fail.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("wasmpod {args:?} did not finish within {DEADLINE:?}");
            }
        };
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `wasmpod <args>` in the background, for tests that talk to it while it runs.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(wasmpod_bin())
            .args(args)
            .env("WASMPOD_CACHE_DIR", self.cache_dir())
            .env("WASMPOD_STATE_DIR", self.state_dir())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmpod");
        let (lines_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout pipe");
        let stdout = std::thread::spawn(move || {
            let mut all = String::new();
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok)
            {
                all.push_str(&line);
                all.push('\n');
                let _ = lines_tx.send(line);
            }
            all
        });
        let stderr = child.stderr.take().expect("stderr pipe");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut all);
            all
        });
        Running {
            guard: KillOnDrop {
                pid: child.id(),
                armed: true,
            },
            child,
            lines,
            stdout,
            stderr,
        }
    }

    /// `wasmpod run -o json MANIFEST <extra>` on `manifest` text.
    pub fn run_json(&self, manifest: &str, extra: &[&str]) -> Outcome {
        let path = self.manifest("pod.yaml", manifest);
        let path = path.to_str().expect("utf-8 path");
        let mut args = vec!["run", "-o", "json", path];
        args.extend_from_slice(extra);
        self.cmd(&args)
    }

    /// Every entry under the state dir, recursively (relative paths).
    pub fn state_entries(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.state_dir(), &self.state_dir(), &mut found);
        found.sort();
        found
    }
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        found.push(path.strip_prefix(root).unwrap_or(&path).to_owned());
        if path.is_dir() {
            walk(root, &path, found);
        }
    }
}

/// An image archive whose module is its one layer ([`wasm_layer_archives`]).
#[derive(Debug, Clone)]
pub struct LayerArchive {
    /// The layer's media type.
    pub media_type: &'static str,
    /// The archive.
    pub path: PathBuf,
    /// The image's name (`wasmpod.test/exit-...:1`).
    pub name: String,
}

/// The `exit` guest's image as Wasm OCI tooling ships it (the module is the layer), once for
/// each of [`WASM_LAYER_MEDIA_TYPES`](wasmpod::oci::WASM_LAYER_MEDIA_TYPES), written as
/// archives in `dir`. The guest is the wasip1 module whatever the media type says (a wasip2
/// command can only exit 0 or 1; the module exits with the code it is given, so each test can
/// tell which container ran). The same archives, byte for byte, every time: `wasmpod run`
/// runs them in one test, the shim in another.
pub fn wasm_layer_archives(dir: &Path) -> Vec<LayerArchive> {
    wasmpod::oci::WASM_LAYER_MEDIA_TYPES
        .into_iter()
        .map(|media_type| {
            let kind: String = media_type
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let image = wasmpod::oci::OciImage::wasm_layer_as(
                Path::new(wasmpod_guests::EXIT_P1),
                &format!("wasmpod.test/exit-{kind}:1"),
                media_type,
            )
            .expect("image of the exit guest");
            let path = dir.join(format!("exit-{kind}.tar"));
            image.write_archive(&path).expect("write image archive");
            LayerArchive {
                media_type,
                path,
                name: image.name,
            }
        })
        .collect()
}

/// Waits until `condition` holds, checking every 10 ms, for things that raise no event a test
/// can wait on (a file appearing); the test fails at [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(std::time::Instant::now() < give_up, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The status of container `name` (init or app) in a `PodStatus` JSON; the test fails without
/// one.
pub fn container_status<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|key| status[key].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no status for container {name}: {status}"))
}

/// The `state.terminated.message` of container `name` in a `PodStatus` JSON (empty when none).
pub fn terminated_message(status: &serde_json::Value, name: &str) -> String {
    container_status(status, name)["state"]["terminated"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The terminated state of container `name` in a `PodStatus` JSON: `(exitCode, reason)`.
pub fn terminated(status: &serde_json::Value, name: &str) -> (i64, String) {
    let container = container_status(status, name);
    let t = &container["state"]["terminated"];
    (
        t["exitCode"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} not terminated: {container}")),
        t["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The `restartCount` of container `name`.
pub fn restart_count(status: &serde_json::Value, name: &str) -> i64 {
    container_status(status, name)["restartCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("no restartCount for {name}: {status}"))
}

/// Kills the process `pid` (a child not yet waited for, so the pid is still its own) when
/// dropped armed: a test that fails midway leaves no pod process behind.
#[derive(Debug)]
struct KillOnDrop {
    pid: u32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// A `wasmpod` process running in the background.
#[derive(Debug)]
pub struct Running {
    /// Ends the process if the test fails before `finish`.
    guard: KillOnDrop,
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    /// Waits until a stdout line contains `needle` (the test fails at [`DEADLINE`]).
    pub fn wait_for_stdout(&self, needle: &str) {
        let give_up = std::time::Instant::now() + DEADLINE;
        loop {
            let left = give_up.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("no stdout line containing {needle:?} within {DEADLINE:?}"),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -s {signal} failed");
    }

    /// Waits for the process to end (the test fails at [`DEADLINE`]).
    pub fn finish(self) -> Outcome {
        let Running {
            mut guard,
            mut child,
            stdout,
            stderr,
            ..
        } = self;
        guard.armed = false;
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(DEADLINE) {
            Ok(status) => status.expect("wait for wasmpod"),
            Err(_) => {
                // End the process we started, by its pid, and fail.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("wasmpod did not finish within {DEADLINE:?}");
            }
        };
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}
