//! Per-container log capture in the Kubernetes CRI log format.
//!
//! Each container run writes one file (`<pod dir>/logs/<container>/<restartCount>.log`, the
//! kubelet layout), one record per line:
//! `2026-11-23T10:00:00.000000000Z stdout F hello`. A line longer than [`MAX_RECORD`] is split
//! into `P` (partial) records ended by an `F` record, as containerd does; a last line without a
//! newline is written as `F` when the container ends. Guest writes go straight to the file (one
//! `write` per guest write call), so a guest that writes faster than the disk is slowed down,
//! never buffered without bound. Files are rotated as kubelet rotates them: once the file
//! passes [`Rotation::max_size`] it becomes `N.log.1` (older ones shift to `.2`...) and a new
//! `N.log` starts; at most [`Rotation::max_files`] files are kept, so a guest that floods its
//! output can fill neither memory nor disk. An optional observer sees each record as it is
//! written: that is how `wasmpod run` prints `[container] line`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The longest record content; longer lines are split into partial records.
pub const MAX_RECORD: usize = 16 * 1024;

/// Which of a guest's outputs a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`, as written in the log file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// RFC 3339 timestamp with nanoseconds, as written.
    pub time: String,
    /// The stream.
    pub stream: LogStream,
    /// `true` for a `P` record: the line goes on in the next record.
    pub partial: bool,
    /// The content, without the newline.
    pub content: String,
}

impl LogRecord {
    /// Parses one line of a CRI log file.
    pub fn parse(line: &str) -> Option<LogRecord> {
        let mut parts = line.splitn(4, ' ');
        let time = parts.next()?.to_owned();
        let stream = match parts.next()? {
            "stdout" => LogStream::Stdout,
            "stderr" => LogStream::Stderr,
            _ => return None,
        };
        let partial = match parts.next()? {
            "P" => true,
            "F" => false,
            _ => return None,
        };
        let content = parts.next().unwrap_or_default().to_owned();
        Some(LogRecord {
            time,
            stream,
            partial,
            content,
        })
    }
}

/// Reads a CRI log file back into whole lines: `(stream, line)`, partial records joined.
pub fn read_lines(path: &Path) -> std::io::Result<Vec<(LogStream, String)>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = Vec::new();
    let mut pending: [String; 2] = Default::default();
    for record in text.lines().filter_map(LogRecord::parse) {
        let slot = &mut pending[record.stream as usize];
        slot.push_str(&record.content);
        if !record.partial {
            lines.push((record.stream, std::mem::take(slot)));
        }
    }
    Ok(lines)
}

/// When log files are rotated (kubelet's `containerLogMaxSize` and `containerLogMaxFiles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file that grew past this many bytes is rotated. Default: 10 MiB.
    pub max_size: u64,
    /// How many files are kept, the current one included (at least 1). Default: 5.
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: 10 << 20,
            max_files: 5,
        }
    }
}

/// Sees every record as it is written: `(stream, content, partial)`.
pub type LogObserver = Arc<dyn Fn(LogStream, &str, bool) + Send + Sync>;

/// Where a container run's log file goes and when it is rotated.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// The CRI log file (its directory must exist).
    pub path: PathBuf,
    /// When it is rotated.
    pub rotation: Rotation,
}

/// The log of one container run: its CRI log file, if it has one, and its observer. Cheap to
/// clone; all clones write the same file.
#[derive(Clone)]
pub struct ContainerLog {
    inner: Arc<Mutex<LogState>>,
}

impl std::fmt::Debug for ContainerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerLog").finish_non_exhaustive()
    }
}

struct LogState {
    path: PathBuf,
    /// `None` without a file: records go only to the observer.
    out: Option<BufWriter<File>>,
    /// Bytes in the current file.
    size: u64,
    rotation: Rotation,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
    observer: Option<LogObserver>,
    /// The first write error; later writes are dropped rather than failing the guest.
    failed: bool,
}

impl ContainerLog {
    /// A log writing `file` (created, truncated) if given, and feeding `observer`.
    pub fn create(file: Option<LogFile>, observer: Option<LogObserver>) -> std::io::Result<Self> {
        let (path, out, rotation) = match file {
            Some(LogFile { path, rotation }) => {
                let out = BufWriter::with_capacity(MAX_RECORD + 64, File::create(&path)?);
                (path, Some(out), rotation)
            }
            None => (PathBuf::new(), None, Rotation::default()),
        };
        Ok(ContainerLog {
            inner: Arc::new(Mutex::new(LogState {
                path,
                out,
                size: 0,
                rotation,
                pending: Default::default(),
                observer,
                failed: false,
            })),
        })
    }

    /// The log file, if this log writes one.
    pub fn path(&self) -> Option<PathBuf> {
        let state = self.lock();
        state.out.is_some().then(|| state.path.clone())
    }

    /// A WASI output stream writing into this log as `stream`.
    pub fn stream(&self, stream: LogStream) -> GuestOutput {
        GuestOutput {
            log: self.clone(),
            stream,
        }
    }

    /// Writes unfinished lines as final records and flushes; called when the guest ended.
    pub fn finish(&self) {
        let mut file = self.lock();
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let rest = std::mem::take(&mut file.pending[stream as usize]);
            if !rest.is_empty() {
                file.record(stream, &rest, false);
            }
        }
        file.flush();
    }

    fn write(&self, stream: LogStream, bytes: &[u8]) {
        let mut file = self.lock();
        file.append(stream, bytes);
        file.flush();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogState {
    fn append(&mut self, stream: LogStream, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let pending_len = self.pending[stream as usize].len();
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) if pending_len + end <= MAX_RECORD => {
                    let mut line = std::mem::take(&mut self.pending[stream as usize]);
                    line.extend_from_slice(&bytes[..end]);
                    self.record(stream, &line, false);
                    bytes = &bytes[end + 1..];
                }
                _ => {
                    let room = MAX_RECORD - pending_len;
                    let take = bytes.len().min(room);
                    self.pending[stream as usize].extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.pending[stream as usize].len() == MAX_RECORD {
                        let chunk = std::mem::take(&mut self.pending[stream as usize]);
                        self.record(stream, &chunk, true);
                    }
                }
            }
        }
    }

    fn record(&mut self, stream: LogStream, content: &[u8], partial: bool) {
        let content = String::from_utf8_lossy(content);
        let content = content.strip_suffix('\r').unwrap_or(&content);
        if let Some(out) = self.out.as_mut().filter(|_| !self.failed) {
            let tag = if partial { 'P' } else { 'F' };
            let line = format!("{} {} {tag} {content}\n", now(), stream.as_str());
            let written = out.write_all(line.as_bytes());
            self.note(written);
            self.size += line.len() as u64;
            if self.size > self.rotation.max_size {
                let rotated = self.rotate();
                self.note(rotated);
            }
        }
        if let Some(observer) = &self.observer {
            observer(stream, content, partial);
        }
    }

    /// `N.log` → `N.log.1` → `N.log.2`..., dropping the oldest, and a fresh `N.log`.
    fn rotate(&mut self) -> std::io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.flush()?;
        let keep = self.rotation.max_files.max(1);
        let rotated = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if keep == 1 {
            self.out = Some(BufWriter::with_capacity(
                MAX_RECORD + 64,
                File::create(&self.path)?,
            ));
        } else {
            for n in (1..keep - 1).rev() {
                match std::fs::rename(rotated(n), rotated(n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated(1))?;
            self.out = Some(BufWriter::with_capacity(
                MAX_RECORD + 64,
                File::create(&self.path)?,
            ));
        }
        self.size = 0;
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut().filter(|_| !self.failed) {
            let flushed = out.flush();
            self.note(flushed);
        }
    }

    fn note(&mut self, result: std::io::Result<()>) {
        if let Err(error) = result {
            tracing::warn!(%error, "cannot write container log; dropping further output");
            self.failed = true;
        }
    }
}

/// The current time as CRI log files write it: RFC 3339, UTC, nine fractional digits.
pub fn now() -> String {
    format_time(jiff::Timestamp::now())
}

/// `ts` as RFC 3339, UTC, nine fractional digits.
pub fn format_time(ts: jiff::Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        ts.strftime("%Y-%m-%dT%H:%M:%S"),
        ts.subsec_nanosecond()
    )
}

/// One of a guest's outputs, handed to wasmtime-wasi as its stdout or stderr.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    log: ContainerLog,
    stream: LogStream,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(writes: &[(LogStream, &[u8])]) -> (String, Vec<(LogStream, String)>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let file = LogFile {
            path: path.clone(),
            rotation: Rotation::default(),
        };
        let log = ContainerLog::create(Some(file), None).expect("create log");
        for (stream, bytes) in writes {
            log.write(*stream, bytes);
        }
        log.finish();
        let raw = std::fs::read_to_string(&path).expect("read log");
        (raw, read_lines(&path).expect("read lines"))
    }

    #[test]
    fn records_are_cri_formatted_per_stream() {
        let (raw, lines) = captured(&[
            (LogStream::Stdout, b"hel"),
            (LogStream::Stderr, b"oops\n"),
            (LogStream::Stdout, b"lo\nworld"),
        ]);
        let records: Vec<LogRecord> = raw.lines().filter_map(LogRecord::parse).collect();
        assert_eq!(records.len(), 3, "{raw}");
        assert_eq!(records[0].stream, LogStream::Stderr);
        assert_eq!(records[0].content, "oops");
        assert!(records.iter().all(|r| !r.partial));
        let time = &records[0].time;
        assert_eq!(time.len(), "2026-11-23T10:00:00.000000000Z".len(), "{time}");
        assert!(time.parse::<jiff::Timestamp>().is_ok(), "{time}");
        assert_eq!(
            lines,
            vec![
                (LogStream::Stderr, "oops".to_owned()),
                (LogStream::Stdout, "hello".to_owned()),
                (LogStream::Stdout, "world".to_owned()),
            ]
        );
    }

    #[test]
    fn long_lines_are_split_into_partial_records() {
        let long = vec![b'x'; MAX_RECORD * 2 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        let (raw, lines) = captured(&[(LogStream::Stdout, &input)]);
        let tags: Vec<bool> = raw
            .lines()
            .filter_map(LogRecord::parse)
            .map(|r| r.partial)
            .collect();
        assert_eq!(tags, vec![true, true, false]);
        assert_eq!(lines, vec![(LogStream::Stdout, "x".repeat(long.len()))]);
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;

    #[test]
    fn a_flood_is_rotated_into_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let rotation = Rotation {
            max_size: 4096,
            max_files: 3,
        };
        let file = LogFile {
            path: path.clone(),
            rotation,
        };
        let log = ContainerLog::create(Some(file), None).expect("create log");
        let line = [b'y'; 100];
        for i in 0..1000 {
            let mut bytes = line.to_vec();
            bytes.extend_from_slice(format!(" {i}\n").as_bytes());
            log.write(LogStream::Stdout, &bytes);
        }
        log.finish();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["0.log", "0.log.1", "0.log.2"]);
        for name in &names {
            let size = std::fs::metadata(dir.path().join(name))
                .expect("file")
                .len();
            assert!(size <= 4096 + 200, "{name}: {size} bytes");
        }
        let last = read_lines(&path).expect("current file");
        assert_eq!(last.last().map(|(_, l)| l.ends_with(" 999")), Some(true));
    }
}
