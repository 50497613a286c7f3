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
//!
//! Where the records are kept is the caller's choice, a [`LogSink`]: CRI files (the CLI),
//! memory (the test harness, [`MemoryLogs`], bounded like the files), or only the observer
//! (the shim, which writes containerd's FIFOs from it).

use std::collections::{HashMap, VecDeque};
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

/// Where a sandbox keeps its guests' output, beside its observer.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// CRI log files in the pod directory (`PodDir::log_file`), rotated as this says: what
    /// kubelet reads and `wasmpod logs` prints.
    Files(Rotation),
    /// In memory, per container run, the newest records within [`MemoryLogs`]' bound: a test
    /// reads them back without touching the disk.
    Memory(MemoryLogs),
    /// Nowhere: the observer is the only sink (the shim, which writes containerd's FIFOs and
    /// lets containerd write the CRI files).
    ObserverOnly,
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink::Files(Rotation::default())
    }
}

/// Guests' output kept in memory, per container run (`(container, restart count)`), as whole
/// records. Each run keeps at most [`MemoryLogs::max_bytes`] of record contents, dropping its
/// oldest records beyond that, so a flooding guest cannot fill memory (the bound rotation puts
/// on log files). Cheap to clone; clones share the records.
#[derive(Clone)]
pub struct MemoryLogs {
    runs: Arc<Mutex<HashMap<(String, u32), MemoryRun>>>,
    max_bytes: usize,
}

impl std::fmt::Debug for MemoryLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLogs")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// One container run's records in memory.
#[derive(Default)]
struct MemoryRun {
    /// `(stream, partial, content)`, oldest first.
    records: VecDeque<(LogStream, bool, String)>,
    /// Bytes of content in `records`.
    bytes: usize,
    /// Records dropped from the front to stay within the bound.
    dropped: u64,
}

impl Default for MemoryLogs {
    /// 10 MiB per container run, as one rotated log file of kubelet's.
    fn default() -> Self {
        MemoryLogs::new(Rotation::default().max_size as usize)
    }
}

impl MemoryLogs {
    /// Empty logs keeping at most `max_bytes` of record contents per container run (at least
    /// the newest record, whatever its size).
    pub fn new(max_bytes: usize) -> Self {
        MemoryLogs {
            runs: Arc::default(),
            max_bytes,
        }
    }

    /// The bound on each run's kept contents.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Container `name`'s run `attempt` (its restart count then) as whole lines, partial
    /// records joined, oldest first; empty if it wrote nothing. Like [`read_lines`] of its log
    /// file.
    pub fn lines(&self, name: &str, attempt: u32) -> Vec<(LogStream, String)> {
        let runs = self.lock();
        let Some(run) = runs.get(&(name.to_owned(), attempt)) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let mut pending: [String; 2] = Default::default();
        for (stream, partial, content) in &run.records {
            let slot = &mut pending[*stream as usize];
            slot.push_str(content);
            if !partial {
                lines.push((*stream, std::mem::take(slot)));
            }
        }
        lines
    }

    /// How many of run `attempt`'s oldest records were dropped to stay within the bound.
    pub fn dropped(&self, name: &str, attempt: u32) -> u64 {
        self.lock()
            .get(&(name.to_owned(), attempt))
            .map_or(0, |run| run.dropped)
    }

    /// Starts (or restarts: a run of the same attempt begins afresh) the record of a run.
    fn begin(&self, name: &str, attempt: u32) -> MemoryTarget {
        self.lock()
            .insert((name.to_owned(), attempt), MemoryRun::default());
        MemoryTarget {
            logs: self.clone(),
            key: (name.to_owned(), attempt),
        }
    }

    fn push(&self, key: &(String, u32), stream: LogStream, partial: bool, content: &str) {
        let mut runs = self.lock();
        let run = runs.entry(key.clone()).or_default();
        run.bytes += content.len();
        run.records.push_back((stream, partial, content.to_owned()));
        while run.bytes > self.max_bytes && run.records.len() > 1 {
            if let Some((_, _, oldest)) = run.records.pop_front() {
                run.bytes -= oldest.len();
                run.dropped += 1;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), MemoryRun>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where one container run's records go in a [`MemoryLogs`].
struct MemoryTarget {
    logs: MemoryLogs,
    key: (String, u32),
}

/// The log of one container run: its CRI log file or its place in memory, if it has one, and
/// its observer. Cheap to clone; all clones write the same file.
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
    /// `None` without a file: records go to memory or only to the observer.
    out: Option<BufWriter<File>>,
    /// Records kept in memory instead of a file.
    memory: Option<MemoryTarget>,
    /// Bytes in the current file.
    size: u64,
    rotation: Rotation,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
    observer: Option<LogObserver>,
    /// The first write error; later writes are dropped rather than failing the guest.
    failed: bool,
}

/// Where one container run's records go, besides its observer.
#[derive(Debug)]
pub enum LogTarget<'a> {
    /// A CRI log file (created, truncated).
    File(LogFile),
    /// `logs`, as run `attempt` of container `name`.
    Memory {
        /// The pod's in-memory logs.
        logs: &'a MemoryLogs,
        /// The container.
        name: &'a str,
        /// Its restart count.
        attempt: u32,
    },
    /// Only the observer.
    None,
}

impl ContainerLog {
    /// A log writing to `target` and feeding `observer`.
    pub fn create(target: LogTarget<'_>, observer: Option<LogObserver>) -> std::io::Result<Self> {
        let (path, out, rotation, memory) = match target {
            LogTarget::File(LogFile { path, rotation }) => {
                let out = BufWriter::with_capacity(MAX_RECORD + 64, File::create(&path)?);
                (path, Some(out), rotation, None)
            }
            LogTarget::Memory {
                logs,
                name,
                attempt,
            } => (
                PathBuf::new(),
                None,
                Rotation::default(),
                Some(logs.begin(name, attempt)),
            ),
            LogTarget::None => (PathBuf::new(), None, Rotation::default(), None),
        };
        Ok(ContainerLog {
            inner: Arc::new(Mutex::new(LogState {
                path,
                out,
                memory,
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
        if let Some(memory) = &self.memory {
            memory.logs.push(&memory.key, stream, partial, content);
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
        let log = ContainerLog::create(LogTarget::File(file), None).expect("create log");
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
        let log = ContainerLog::create(LogTarget::File(file), None).expect("create log");
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

    #[test]
    fn memory_logs_keep_each_run_apart_and_the_newest_records_within_the_bound() {
        let logs = MemoryLogs::new(1000);
        let first = ContainerLog::create(
            LogTarget::Memory {
                logs: &logs,
                name: "app",
                attempt: 0,
            },
            None,
        )
        .expect("create log");
        first.write(LogStream::Stdout, b"run 0\n");
        first.finish();
        let second = ContainerLog::create(
            LogTarget::Memory {
                logs: &logs,
                name: "app",
                attempt: 1,
            },
            None,
        )
        .expect("create log");
        // 100 lines of ~100 bytes: ten times the bound.
        for i in 0..100 {
            second.write(
                LogStream::Stdout,
                format!("{:>96} {i:02}\n", "x").as_bytes(),
            );
        }
        // A line longer than a record, and one without a newline at the end.
        second.write(LogStream::Stderr, &vec![b'z'; MAX_RECORD + 5]);
        second.write(LogStream::Stderr, b"\nlast words");
        second.finish();

        assert_eq!(
            logs.lines("app", 0),
            vec![(LogStream::Stdout, "run 0".into())]
        );
        assert_eq!(logs.dropped("app", 0), 0);
        let lines = logs.lines("app", 1);
        // Only the newest records within the bound are kept, whatever the guest wrote: the
        // long line's first record alone passes it, so it went too, with the 100 lines before
        // it; its last 5 bytes and the last words stay.
        assert_eq!(
            lines,
            vec![
                (LogStream::Stderr, "zzzzz".into()),
                (LogStream::Stderr, "last words".into())
            ]
        );
        assert_eq!(logs.dropped("app", 1), 101);
        assert!(logs.lines("app", 2).is_empty() && logs.lines("other", 0).is_empty());
    }
}
