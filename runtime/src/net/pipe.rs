//! Connections of the virtual network: two bounded in-memory pipes, and the `wasi:io` streams
//! over them.
//!
//! A pipe holds at most its capacity in bytes: `check-write` grants only the free space, so a
//! writer faster than its reader waits on its pollable, and memory stays bounded. Bytes move
//! as the `Bytes` wasmtime copied out of the writer's memory, handed to the reader without
//! another copy. The kernel's semantics on close are kept: dropping the output stream is a
//! FIN (the peer reads the rest, then end of stream); dropping the input stream with bytes still
//! unread resets the connection (the peer's next write, and its read once drained, fail with
//! `connection-reset`), as Linux sends RST; writing to a peer that stopped reading fails with
//! the stream closed (`EPIPE`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use super::Stats;

/// Which end of a connection: the one that connected, or the one that accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The connecting socket.
    Client,
    /// The accepted socket.
    Server,
}

impl Side {
    /// The pipe this side writes to.
    fn outgoing(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    /// The pipe this side reads from.
    fn incoming(self) -> usize {
        1 - self.outgoing()
    }
}

/// One connection: a pipe each way.
#[derive(Debug)]
pub(crate) struct Connection {
    pipes: [Pipe; 2],
    capacity: usize,
    stats: Arc<Stats>,
}

impl Connection {
    /// A new connection whose pipes each hold up to `capacity` bytes; returns its client and
    /// server ends.
    pub(crate) fn open(capacity: usize, stats: Arc<Stats>) -> (Endpoint, Endpoint) {
        let conn = Arc::new(Connection {
            pipes: [Pipe::default(), Pipe::default()],
            capacity: capacity.max(1),
            stats,
        });
        (
            Endpoint {
                conn: conn.clone(),
                side: Side::Client,
            },
            Endpoint {
                conn,
                side: Side::Server,
            },
        )
    }

    /// Both ways fail with `connection-reset` from now on (once the bytes already sent are read).
    fn reset(&self) {
        for pipe in &self.pipes {
            pipe.update(|p| p.reset = true);
        }
    }
}

/// One end of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    conn: Arc<Connection>,
    side: Side,
}

impl Endpoint {
    /// The input and output streams of this end.
    pub(crate) fn streams(&self) -> (DynInputStream, DynOutputStream) {
        let reader = Reader {
            conn: self.conn.clone(),
            side: self.side,
        };
        let writer = Writer {
            conn: self.conn.clone(),
            side: self.side,
        };
        (Box::new(reader), Box::new(writer))
    }

    /// `shutdown(send)`: the peer reads the rest, then the end of the stream.
    pub(crate) fn shutdown_send(&self) {
        self.conn.pipes[self.side.outgoing()].update(|p| p.write_closed = true);
    }

    /// `shutdown(receive)`: unread bytes are dropped; reads end and the peer's writes fail.
    pub(crate) fn shutdown_receive(&self) {
        self.conn.pipes[self.side.incoming()].close_read();
    }

    /// Resets the connection (an end that was never accepted).
    pub(crate) fn reset(&self) {
        self.conn.reset();
    }

    /// This end as a byte stream of the host (an in-process service or client).
    pub(crate) fn into_host_stream(self) -> HostStream {
        HostStream {
            reader: Reader {
                conn: self.conn.clone(),
                side: self.side,
            },
            writer: Writer {
                conn: self.conn,
                side: self.side,
            },
        }
    }

    /// Whether `other` is the other end of this connection.
    pub(crate) fn is_peer_of(&self, other: &Endpoint) -> bool {
        Arc::ptr_eq(&self.conn, &other.conn) && self.side != other.side
    }
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Pipe {
    state: Mutex<PipeState>,
}

#[derive(Debug, Default)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    /// The writer is done: end of stream once drained.
    write_closed: bool,
    /// The reader is gone: writes fail.
    read_closed: bool,
    /// The connection was reset.
    reset: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl PipeState {
    /// The error a writer gets, if any.
    fn write_error(&self) -> StreamResult<()> {
        if self.reset {
            Err(reset_error())
        } else if self.read_closed || self.write_closed {
            Err(StreamError::Closed)
        } else {
            Ok(())
        }
    }

    /// Whether a read would not return an empty, open result.
    fn readable(&self) -> bool {
        !self.chunks.is_empty() || self.write_closed || self.read_closed || self.reset
    }
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state and wakes both ends.
    fn update(&self, change: impl FnOnce(&mut PipeState)) {
        let (reader, writer) = {
            let mut state = self.lock();
            change(&mut state);
            (state.reader.take(), state.writer.take())
        };
        wake(reader);
        wake(writer);
    }

    /// The reader goes away; returns whether bytes were left unread.
    fn close_read(&self) -> bool {
        let mut unread = false;
        self.update(|p| {
            unread = p.buffered > 0;
            p.read_closed = true;
            p.chunks.clear();
            p.buffered = 0;
        });
        unread
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Registers `cx`'s waker in `slot`, cloning only when it changed.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn reset_error() -> StreamError {
    StreamError::LastOperationFailed(
        std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
    )
}

/// Takes up to `size` bytes from the front of `chunks`: without copying when they come from one
/// chunk, else gathered into one buffer.
fn take(chunks: &mut VecDeque<Bytes>, size: usize) -> Bytes {
    let Some(first) = chunks.front_mut() else {
        return Bytes::new();
    };
    if first.len() >= size {
        let out = first.split_to(size);
        if first.is_empty() {
            chunks.pop_front();
        }
        return out;
    }
    if chunks.len() == 1 {
        return chunks.pop_front().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(size.min(chunks.iter().map(Bytes::len).sum()));
    while out.len() < size {
        let Some(chunk) = chunks.front_mut() else {
            break;
        };
        let n = chunk.len().min(size - out.len());
        out.extend_from_slice(&chunk.split_to(n));
        if chunk.is_empty() {
            chunks.pop_front();
        }
    }
    out.freeze()
}

/// The input stream of one end.
struct Reader {
    conn: Arc<Connection>,
    side: Side,
}

impl Reader {
    fn pipe(&self) -> &Pipe {
        &self.conn.pipes[self.side.incoming()]
    }
}

impl InputStream for Reader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let pipe = self.pipe();
        let mut state = pipe.lock();
        if state.chunks.is_empty() {
            return if state.reset {
                Err(reset_error())
            } else if state.write_closed || state.read_closed {
                Err(StreamError::Closed)
            } else {
                Ok(Bytes::new())
            };
        }
        let out = take(&mut state.chunks, size);
        state.buffered -= out.len();
        let writer = state.writer.take();
        drop(state);
        wake(writer);
        Ok(out)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Reader {
    async fn ready(&mut self) {
        let pipe = self.pipe();
        poll_fn(|cx| {
            let mut state = pipe.lock();
            if state.readable() {
                return Poll::Ready(());
            }
            register(&mut state.reader, cx);
            Poll::Pending
        })
        .await;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.pipe().close_read() {
            self.conn.reset();
        }
    }
}

/// The output stream of one end.
struct Writer {
    conn: Arc<Connection>,
    side: Side,
}

impl Writer {
    fn pipe(&self) -> &Pipe {
        &self.conn.pipes[self.side.outgoing()]
    }
}

impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let capacity = self.conn.capacity;
        let mut state = self.pipe().lock();
        state.write_error()?;
        let free = capacity - state.buffered;
        if bytes.len() > free {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write of {} bytes exceeds the {free} bytes check-write allowed",
                bytes.len()
            )));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        state.buffered += bytes.len();
        state.chunks.push_back(bytes);
        self.conn.stats.record_buffered(state.buffered);
        let reader = state.reader.take();
        drop(state);
        wake(reader);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Written bytes are visible to the reader at once: nothing to flush.
        self.pipe().lock().write_error()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let state = self.pipe().lock();
        state.write_error()?;
        Ok(self.conn.capacity - state.buffered)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {
        let capacity = self.conn.capacity;
        let pipe = self.pipe();
        poll_fn(|cx| {
            let mut state = pipe.lock();
            if state.buffered < capacity || state.write_error().is_err() {
                return Poll::Ready(());
            }
            register(&mut state.writer, cx);
            Poll::Pending
        })
        .await;
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.pipe().update(|p| p.write_closed = true);
    }
}

/// One end of a connection as tokio's byte stream, for the host's side of a virtual connection
/// (a `wasi:http` service's listener, a guest's outgoing HTTP request). Closing follows the
/// guest streams': dropping it with bytes unread resets the connection.
#[derive(Debug)]
pub(crate) struct HostStream {
    reader: Reader,
    writer: Writer,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("side", &self.side).finish()
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("side", &self.side).finish()
    }
}

fn io_error(e: &StreamError) -> std::io::Error {
    match e {
        StreamError::Closed => std::io::ErrorKind::BrokenPipe.into(),
        _ => std::io::ErrorKind::ConnectionReset.into(),
    }
}

impl tokio::io::AsyncRead for HostStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let pipe = self.reader.pipe();
        let mut state = pipe.lock();
        if state.chunks.is_empty() {
            if state.reset {
                return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
            }
            if state.write_closed || state.read_closed {
                return Poll::Ready(Ok(()));
            }
            register(&mut state.reader, cx);
            return Poll::Pending;
        }
        let out = take(&mut state.chunks, buf.remaining());
        state.buffered -= out.len();
        let writer = state.writer.take();
        drop(state);
        wake(writer);
        buf.put_slice(&out);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for HostStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let conn = &self.writer.conn;
        let mut state = self.writer.pipe().lock();
        if let Err(e) = state.write_error() {
            return Poll::Ready(Err(io_error(&e)));
        }
        let free = conn.capacity - state.buffered;
        if free == 0 {
            register(&mut state.writer, cx);
            return Poll::Pending;
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = free.min(buf.len());
        state.buffered += n;
        state.chunks.push_back(Bytes::copy_from_slice(&buf[..n]));
        conn.stats.record_buffered(state.buffered);
        let reader = state.reader.take();
        drop(state);
        wake(reader);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        // Written bytes are visible to the reader at once: nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.writer.pipe().update(|p| p.write_closed = true);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(capacity: usize) -> (Endpoint, Endpoint, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        let (client, server) = Connection::open(capacity, stats.clone());
        (client, server, stats)
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_within_the_bound() {
        let (client, server, stats) = pair(8);
        let (mut c_in, mut c_out) = client.streams();
        let (mut s_in, mut s_out) = server.streams();
        assert_eq!(c_out.check_write().expect("permit"), 8);
        c_out.write(Bytes::from_static(b"hello")).expect("write");
        assert_eq!(c_out.check_write().expect("permit"), 3);
        assert!(c_out.write(Bytes::from_static(b"toolong")).is_err());
        c_out.write(Bytes::from_static(b"abc")).expect("write");
        assert_eq!(c_out.check_write().expect("permit"), 0);
        assert_eq!(stats.snapshot().peak_buffered_bytes, 8);
        assert_eq!(&s_in.read(4).expect("read")[..], b"hell");
        assert_eq!(&s_in.read(100).expect("read")[..], b"oabc");
        assert!(s_in.read(100).expect("read").is_empty());
        s_out.write(Bytes::from_static(b"back")).expect("write");
        assert_eq!(&c_in.read(100).expect("read")[..], b"back");
    }

    #[tokio::test]
    async fn a_full_pipe_wakes_its_writer_when_read() {
        let (client, server, _) = pair(4);
        let (_c_in, mut c_out) = client.streams();
        let (mut s_in, _s_out) = server.streams();
        c_out.write(Bytes::from_static(b"full")).expect("write");
        let waiter = tokio::spawn(async move {
            c_out.ready().await;
            c_out.check_write().expect("permit")
        });
        tokio::task::yield_now().await;
        assert_eq!(&s_in.read(3).expect("read")[..], b"ful");
        let permit = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("join");
        assert_eq!(permit, 3);
    }

    #[tokio::test]
    async fn closing_the_writer_ends_the_stream_after_the_data() {
        let (client, server, _) = pair(16);
        let (_c_in, mut c_out) = client.streams();
        let (mut s_in, _s_out) = server.streams();
        c_out.write(Bytes::from_static(b"last")).expect("write");
        drop(c_out);
        assert_eq!(&s_in.read(16).expect("read")[..], b"last");
        assert!(matches!(s_in.read(16), Err(StreamError::Closed)));
    }

    #[tokio::test]
    async fn dropping_a_reader_with_unread_bytes_resets_the_peer() {
        let (client, server, _) = pair(16);
        let (mut c_in, mut c_out) = client.streams();
        let (s_in, _s_out) = server.streams();
        c_out.write(Bytes::from_static(b"unread")).expect("write");
        drop(s_in);
        assert!(matches!(
            c_out.check_write(),
            Err(StreamError::LastOperationFailed(_))
        ));
        assert!(matches!(
            c_in.read(1),
            Err(StreamError::LastOperationFailed(_))
        ));
    }

    #[tokio::test]
    async fn writing_to_a_reader_that_left_cleanly_is_a_closed_stream() {
        let (client, server, _) = pair(16);
        let (_c_in, mut c_out) = client.streams();
        drop(server.streams());
        assert!(matches!(c_out.check_write(), Err(StreamError::Closed)));
    }
}
