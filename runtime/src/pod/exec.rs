//! `exec`: a command run inside a running container, as CRI's `Exec` and `ExecSync` and
//! `kubectl exec` ask for it.
//!
//! An exec'd process is a Wasm command in a store of its own that sees what the container's
//! guest sees: its volumes and control directory (the same open directories), its environment
//! and working directory, its memory and CPU limits, the pod's network. It ends when it
//! returns, when its caller's `kill` fires, or when the container stops.
//!
//! The command (`argv[0]`) is looked up as a shell would, in the container's filesystem (its
//! mounts; the image's root filesystem for the shim), never outside it:
//! 1. with a `/`: that path (relative ones from the working directory);
//! 2. else each directory of the container's `PATH`, in order;
//! 3. else a tool of wasmpod's built-in toolbox ([`crate::toolbox`]);
//! 4. else it is not found: exit 127 and `CMD: not found` on stderr. A file that is not
//!    WebAssembly exits 126.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::cli::{StdinStream, StdoutStream};

use super::{CONTROL_DIR, ContainerState, PodError, Sandbox};
use crate::engine::{Engine, ExitStatus, GuestIo, Image, ImageError, Preopen};
use crate::error::Result;
use crate::hostdir::HostDir;
use crate::toolbox;

/// Exit code of a command that was not found (as a shell's).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code of a command found but not runnable: not WebAssembly (as a shell's).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The `PATH` of a container whose env sets none (a Linux container's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run and where its stdio goes.
pub struct ExecConfig {
    /// `argv`; `argv[0]` names the command.
    pub argv: Vec<String>,
    /// Its stdin; `None` reads as empty.
    pub stdin: Option<Box<dyn StdinStream + Sync>>,
    /// Its stdout and stderr.
    pub io: GuestIo,
    /// Ends the process at once (exit 137).
    pub kill: CancellationToken,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecConfig")
            .field("argv", &self.argv)
            .finish_non_exhaustive()
    }
}

/// What `argv[0]` names.
enum Command {
    /// A Wasm command in the container's filesystem (or the toolbox).
    Wasm(Image),
    /// Nothing by that name.
    NotFound,
    /// A file that is not WebAssembly, or that cannot be read.
    NotExecutable(String),
}

impl Sandbox {
    /// Runs `config.argv` inside running container `name` and returns how it ended. The
    /// command's own failures (not found, a trap, its exit code) are its exit status; an
    /// error means the exec could not be made (no such container, not running).
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container = name, command = config.argv.first().map(String::as_str).unwrap_or("")))]
    pub async fn exec(&self, name: &str, config: ExecConfig) -> Result<ExitStatus> {
        let (invocation, path, stop, control_dir) = {
            let state = self.lock();
            self.ensure_alive(&state)?;
            let container = self.find(&state, name)?;
            // A container being killed is not running any more, though its guest may not
            // have ended yet.
            if !container.state.can_exec() || container.stop.is_cancelled() {
                return Err(PodError::NotRunning {
                    name: name.to_owned(),
                    state: container.state,
                }
                .into());
            }
            let spec = &container.config.spec;
            let path = spec
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map_or_else(|| DEFAULT_PATH.to_owned(), |(_, v)| v.clone());
            let mut invocation = self.invocation(container, config.argv.clone());
            // The exec's usage is its own, not the container's (as for a preStop hook).
            invocation.usage = Default::default();
            (
                invocation,
                path,
                container.stop.child_token(),
                container.control_dir.clone(),
            )
        };
        let argv0 = config.argv.first().cloned().unwrap_or_default();
        let engine = self.shared.engine.clone();
        let preopens = invocation.preopens.clone();
        let cwd = invocation.cwd.clone().unwrap_or_else(|| "/".to_owned());
        let pod_info = self.pod_info();
        let command = crate::blocking::unblocked(move || {
            if let Err(error) = write_pod_info(&control_dir, &pod_info) {
                tracing::debug!(%error, "cannot write the pod's state for the toolbox");
            }
            resolve(&engine, &argv0, &cwd, &path, &preopens)
        })
        .await;
        let GuestIo { stdout, stderr } = config.io;
        let image = match command {
            Command::Wasm(image) => image,
            Command::NotFound => {
                let message = format!("{}: not found", config.argv[0]);
                say(&*stderr, &message).await;
                return Ok(ExitStatus {
                    message: Some(message),
                    ..ExitStatus::exited(EXIT_NOT_FOUND)
                });
            }
            Command::NotExecutable(why) => {
                let message = format!("{}: cannot execute: {why}", config.argv[0]);
                say(&*stderr, &message).await;
                return Ok(ExitStatus {
                    message: Some(message),
                    ..ExitStatus::exited(EXIT_NOT_EXECUTABLE)
                });
            }
        };
        let io = GuestIo { stdout, stderr };
        let run = self
            .shared
            .engine
            .run_with_stdin(&image, invocation, config.stdin, io, stop);
        Ok(tokio::select! {
            exit = run => exit,
            () = config.kill.cancelled() => ExitStatus::killed("exec killed"),
        })
    }

    /// The pod's containers and listeners, as the toolbox's `ps` and `netstat` print them.
    fn pod_info(&self) -> PodInfo {
        let state = self.lock();
        let containers = (state.containers.iter())
            .map(|(name, c)| {
                format!(
                    "{}\t{}\t{}\t{}\n",
                    c.config.display_name.as_deref().unwrap_or(name),
                    c.state,
                    c.config.attempt,
                    c.config.spec.image
                )
            })
            .collect();
        let sockets = (self.shared.network.listening().iter())
            .map(|addr| {
                let any = if addr.is_ipv6() {
                    "[::]:*"
                } else {
                    "0.0.0.0:*"
                };
                format!("tcp\t{addr}\t{any}\tLISTEN\t-\n")
            })
            .collect();
        PodInfo {
            containers,
            sockets,
        }
    }
}

impl ContainerState {
    /// Whether a command may be run in the container: its guest runs.
    pub fn can_exec(self) -> bool {
        self == ContainerState::Running
    }
}

/// The files the toolbox reads in `/run/wasmpod/pod/`.
struct PodInfo {
    /// `NAME\tSTATE\tRESTARTS\tIMAGE` lines.
    containers: String,
    /// `PROTO\tLOCAL\tREMOTE\tSTATE\tCONTAINER` lines.
    sockets: String,
}

/// Writes `info` into the container's control directory (read-only in the guest), each file
/// replaced atomically so a concurrent exec never reads half of one.
fn write_pod_info(control_dir: &Path, info: &PodInfo) -> std::io::Result<()> {
    // The control directory is the guest's CONTROL_DIR: the toolbox's directory beneath it.
    let beneath = Path::new(toolbox::POD_INFO_DIR)
        .strip_prefix(CONTROL_DIR)
        .map_err(std::io::Error::other)?;
    let dir = control_dir.join(beneath);
    std::fs::create_dir_all(&dir)?;
    let files = [
        (toolbox::CONTAINERS_FILE, &info.containers),
        (toolbox::SOCKETS_FILE, &info.sockets),
    ];
    for (file, text) in files {
        let tmp = tempfile::NamedTempFile::new_in(&dir)?;
        std::fs::write(tmp.path(), text)?;
        tmp.persist(dir.join(file)).map_err(|e| e.error)?;
    }
    Ok(())
}

/// Writes `line` to a guest output stream from the host.
async fn say(stream: &(dyn StdoutStream + Sync), line: &str) {
    let mut out = Box::into_pin(stream.async_stream());
    let _ = out.write_all(format!("{line}\n").as_bytes()).await;
    let _ = out.flush().await;
}

/// Finds what `argv0` names (see the module docs). Blocking.
fn resolve(engine: &Engine, argv0: &str, cwd: &str, path: &str, preopens: &[Preopen]) -> Command {
    if argv0.is_empty() {
        return Command::NotFound;
    }
    if argv0.contains('/') {
        let guest = if argv0.starts_with('/') {
            PathBuf::from(argv0)
        } else {
            Path::new(cwd).join(argv0)
        };
        return load(engine, &guest, preopens).unwrap_or(Command::NotFound);
    }
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        if let Some(found) = load(engine, &Path::new(dir).join(argv0), preopens) {
            return found;
        }
    }
    toolbox(engine, argv0)
}

/// The toolbox, when it has a tool named `argv0`.
fn toolbox(engine: &Engine, argv0: &str) -> Command {
    if !toolbox::is_tool(argv0) {
        return Command::NotFound;
    }
    match engine.toolbox() {
        Ok(image) => Command::Wasm(image),
        Err(e) => Command::NotExecutable(e.to_string()),
    }
}

/// The command at guest path `guest`, if a file is there: read beneath the preopen that holds
/// it (the image's rootfs is the one at `/`).
fn load(engine: &Engine, guest: &Path, preopens: &[Preopen]) -> Option<Command> {
    let (dir, relative) = locate(guest, preopens)?;
    if !dir.is_file(&relative) {
        return None;
    }
    Some(match engine.load_image_in(&dir, &relative) {
        Ok(image) => Command::Wasm(image),
        Err(ImageError::NotWasm { .. }) => {
            Command::NotExecutable("not a WebAssembly module or component".into())
        }
        Err(e) => Command::NotExecutable(e.to_string()),
    })
}

/// The open directory holding guest path `guest` and the path beneath it: the preopen with the
/// longest guest path that contains it.
fn locate(guest: &Path, preopens: &[Preopen]) -> Option<(HostDir, PathBuf)> {
    preopens
        .iter()
        .filter_map(|p| {
            let relative = guest.strip_prefix(&p.guest).ok()?;
            Some((p.guest.len(), &p.dir, relative.to_owned()))
        })
        .max_by_key(|(len, ..)| *len)
        .map(|(_, dir, relative)| (dir.clone(), relative))
}
