//! Copying guests' output to the FIFOs containerd reads (its CRI plugin turns them into the
//! CRI log files `kubectl logs` reads).
//!
//! The sandbox's log observer sees every record a guest writes; [`Sinks`] routes it to the
//! writing container's FIFO, synchronously: a guest that writes faster than containerd reads
//! is slowed down, never buffered without bound.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmpod::logs::LogStream;
use wasmpod::pod::PodLogObserver;

use wasmtime_wasi::cli::{AsyncStdinStream, StdinStream};

use super::Stdio;
use super::tty::{TerminalInput, TerminalOutput};
use crate::error::TaskError;

/// One container's open FIFOs.
#[derive(Debug, Default)]
struct Fifos {
    stdout: Option<File>,
    stderr: Option<File>,
    /// A terminal: both streams go to `stdout`, `\n` as `\r\n` (as a pty sends them).
    terminal: bool,
}

/// Every container's open FIFOs, by container id.
#[derive(Debug, Default)]
pub struct Sinks {
    containers: Mutex<HashMap<String, Arc<Mutex<Fifos>>>>,
}

impl Sinks {
    /// Opens container `id`'s FIFOs (see [`open_output`]).
    pub async fn open(&self, id: &str, stdio: &Stdio) -> Result<(), TaskError> {
        let fifos = Fifos {
            stdout: open_output(stdio.stdout.as_deref()).await?,
            stderr: open_output(stdio.stderr.as_deref()).await?,
            terminal: stdio.terminal,
        };
        self.lock()
            .insert(id.to_owned(), Arc::new(Mutex::new(fifos)));
        Ok(())
    }

    /// Closes container `id`'s FIFOs: containerd sees the end of its output.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The observer to give the sandbox: writes each record, with its newline unless it is a
    /// partial one, to the container's FIFO of that stream. Write errors drop the output
    /// (containerd went away), never fail the guest.
    pub fn observer(self: &Arc<Self>) -> PodLogObserver {
        let sinks = Arc::clone(self);
        Arc::new(move |container, stream, content, partial| {
            let Some(fifos) = sinks.lock().get(container).cloned() else {
                return;
            };
            let mut fifos = fifos.lock().unwrap_or_else(PoisonError::into_inner);
            let terminal = fifos.terminal;
            let fifo = match stream {
                LogStream::Stderr if !terminal => &mut fifos.stderr,
                _ => &mut fifos.stdout,
            };
            let Some(file) = fifo else {
                return;
            };
            let mut line = Vec::with_capacity(content.len() + 2);
            line.extend_from_slice(content.as_bytes());
            if !partial {
                if terminal {
                    line.push(b'\r');
                }
                line.push(b'\n');
            }
            if let Err(error) = file.write_all(&line) {
                tracing::debug!(container, %error, "stdio closed, output dropped");
                *fifo = None;
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<Fifos>>>> {
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stdin FIFO (a container's with `stdin: true`, `kubectl run -i`, `kubectl attach -i`; an
/// exec's), opened for reading without waiting for containerd's writing end: reads wait for
/// it on the reactor (a FIFO no writer has opened yet polls neither readable nor hung up), and
/// a writer that never comes holds no thread. The end of containerd's input (`stdinOnce` after
/// the client detached, `CloseIO`) is the end of the guest's. `None` without a path (an
/// empty one included: containerd's way of giving none).
pub fn open_input(
    path: Option<&Path>,
) -> Result<Option<tokio::net::unix::pipe::Receiver>, TaskError> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(path)
        .map(Some)
        .map_err(|e| TaskError::io("open stdin", path, e))
}

/// How long [`open_output`] waits for containerd to open a FIFO's reading end.
const READER_DEADLINE: Duration = Duration::from_secs(60);

/// A stdout or stderr FIFO to write, once containerd's reading end is open; `None` without a
/// path, or when no reader came within [`READER_DEADLINE`] (the output is dropped).
///
/// containerd opens its reading end on a thread of its own, in a blocking `open` that returns
/// when a writer opens. A writer that opened and closed before it (an exec that ends in a
/// millisecond, under load) is never seen: containerd waits forever for the output's end, and
/// `ExecSync` never answers. So, as runc's shim does, the FIFO is first opened write-only,
/// which returns once a reader is there, then read-write for the writing: the FIFO stays open
/// across a restart of containerd (a write-only end would break on its reader's close), and
/// a write never blocks on an `open`.
pub async fn open_output(path: Option<&Path>) -> Result<Option<File>, TaskError> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let owned = path.to_owned();
    let mut reader_came =
        tokio::task::spawn_blocking(move || OpenOptions::new().write(true).open(owned));
    let opened = match tokio::time::timeout(READER_DEADLINE, &mut reader_came).await {
        Ok(opened) => opened,
        Err(_) => {
            // Be the reader its `open` waits for, so the blocked thread returns.
            let unblock = tokio::net::unix::pipe::OpenOptions::new().open_receiver(path);
            let _ = reader_came.await;
            drop(unblock);
            tracing::warn!(path = %path.display(), "nothing reads the output FIFO: output dropped");
            return Ok(None);
        }
    };
    let write_only = opened
        .map_err(|e| TaskError::io("open stdio", path, std::io::Error::other(e)))?
        .map_err(|e| TaskError::io("open stdio", path, e))?;
    let fifo = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| TaskError::io("open stdio", path, e))?;
    drop(write_only);
    Ok(Some(fifo))
}

/// A guest's stdin from `stdio`'s FIFO; with a terminal, through its line discipline, echoed
/// to `terminal` and `^C` cancelling `interrupt` (see [`super::tty`]).
pub fn guest_stdin(
    stdio: &Stdio,
    terminal: Option<&TerminalOutput>,
    interrupt: &CancellationToken,
) -> Result<Option<Box<dyn StdinStream + Sync>>, TaskError> {
    let Some(keys) = open_input(stdio.stdin.as_deref())? else {
        return Ok(None);
    };
    Ok(Some(match terminal {
        Some(terminal) => Box::new(AsyncStdinStream::new(TerminalInput::new(
            keys,
            terminal.clone(),
            interrupt.clone(),
        ))),
        None => Box::new(AsyncStdinStream::new(keys)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_reach_the_container_stream_with_newlines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let err = dir.path().join("err");
        std::fs::write(&out, "").expect("create");
        std::fs::write(&err, "").expect("create");
        let sinks = Arc::new(Sinks::default());
        let stdio = Stdio {
            stdout: Some(out.clone()),
            stderr: Some(err.clone()),
            ..Stdio::default()
        };
        sinks.open("c1", &stdio).await.expect("open");
        let observer = sinks.observer();
        observer("c1", LogStream::Stdout, "hel", true);
        observer("c1", LogStream::Stdout, "lo", false);
        observer("c1", LogStream::Stderr, "oops", false);
        observer("other", LogStream::Stdout, "not mine", false);
        sinks.close("c1");
        observer("c1", LogStream::Stdout, "after close", false);
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "hello\n");
        assert_eq!(std::fs::read_to_string(&err).expect("read"), "oops\n");
    }

    #[tokio::test]
    async fn a_terminal_takes_both_streams_with_crlf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::write(&out, "").expect("create");
        let sinks = Arc::new(Sinks::default());
        let stdio = Stdio {
            stdout: Some(out.clone()),
            terminal: true,
            ..Stdio::default()
        };
        sinks.open("c1", &stdio).await.expect("open");
        let observer = sinks.observer();
        observer("c1", LogStream::Stdout, "out", false);
        observer("c1", LogStream::Stderr, "err", false);
        observer("c1", LogStream::Stdout, "> ", true);
        sinks.close("c1");
        assert_eq!(
            std::fs::read_to_string(&out).expect("read"),
            "out\r\nerr\r\n> "
        );
    }

    #[tokio::test]
    async fn stdin_opens_before_any_writer_and_reads_to_the_writers_end() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdin");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // No writer yet: a blocking open would hold its thread until one came (it kept shims
        // alive after their containers ended); this one returns at once.
        let (handle, fifo) = (tokio::runtime::Handle::current(), path.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _runtime = handle.enter();
            let _ = tx.send(open_input(Some(&fifo)));
        });
        let mut stdin = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening the FIFO waited for a writer")
            .expect("open")
            .expect("a path");
        let reader = tokio::spawn(async move {
            let mut all = String::new();
            stdin.read_to_string(&mut all).await.map(|_| all)
        });
        // Whether the writer comes before the first read or after it, the guest gets every
        // byte and then the end.
        let writer = tokio::task::spawn_blocking(move || {
            let mut fifo = std::fs::OpenOptions::new().write(true).open(&path)?;
            fifo.write_all(b"typed\nmore")
        });
        writer.await.expect("join").expect("write");
        let read = reader.await.expect("join").expect("read");
        assert_eq!(read, "typed\nmore");
    }

    #[tokio::test]
    async fn output_waits_for_the_reader_so_a_quick_writer_is_never_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdout");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // A process that ends at once: opens its output, writes, closes.
        let fifo = path.clone();
        let writer = tokio::spawn(async move {
            let mut out = open_output(Some(&fifo)).await?.expect("a path");
            out.write_all(b"quick\n")
                .map_err(|e| TaskError::io("write", &fifo, e))
        });
        // Opening and closing before containerd's reader opened would leave that reader
        // waiting forever for a writer: the open must wait for it.
        let mut writer = writer;
        let early = tokio::time::timeout(Duration::from_millis(300), &mut writer).await;
        assert!(
            early.is_err(),
            "the output was opened before anything read it"
        );
        // containerd's reader: a blocking open, as its FIFO package does.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let read = std::fs::read_to_string(&path);
            let _ = tx.send(read);
        });
        writer.await.expect("join").expect("write");
        let read = tokio::task::spawn_blocking(move || {
            rx.recv_timeout(std::time::Duration::from_secs(10))
        })
        .await
        .expect("join")
        .expect("the reader never saw the end of the output")
        .expect("read");
        assert_eq!(read, "quick\n");
    }

    #[tokio::test]
    async fn missing_stdio_is_an_error_and_empty_paths_are_none() {
        let sinks = Sinks::default();
        let stdio = Stdio {
            stdout: Some("/nonexistent/wasmpod/fifo".into()),
            ..Stdio::default()
        };
        assert!(sinks.open("c1", &stdio).await.is_err());
        let empty = Stdio {
            stdout: Some("".into()),
            ..Stdio::default()
        };
        sinks.open("c2", &empty).await.expect("no stdio");
    }
}
