//! The pod's virtual loopback network, driven by two containers through the same host
//! functions a guest's `wasi:sockets/tcp` and `wasi:io/streams` calls reach
//! (`wasmpod::net::fuzzing`).
//!
//! The input decodes (with `arbitrary`) into a network configuration and a sequence of socket
//! operations. Invariants checked along the way:
//! - no panic;
//! - bytes: what one end read is, in order, exactly the start of what the other end wrote
//!   (nothing lost, duplicated or reordered), and an orderly end of stream comes only after
//!   every written byte was read; a writer never gets to buffer more than the pipe's capacity;
//! - readiness: a pollable is ready exactly when its call would not just report "nothing yet";
//! - ports: a bind conflicts exactly when a live socket of either container holds a conflicting
//!   address (same family and port, equal addresses or either the wildcard), so a port is free
//!   again once every socket holding it is gone;
//! - at the end, with every stream and socket dropped, no address is bound and every container
//!   can open its full quota of sockets again.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmpod::net::fuzzing::{
    Container, End, ErrorCode, Failure, Input, IpAddressFamily, Output, Shutdown, Socket,
    StreamError,
};
use wasmpod::net::{Network, NetworkConfig};

/// Most operations one input runs.
const MAX_OPS: usize = 256;

#[derive(Debug, Arbitrary)]
struct Plan {
    /// Each direction's buffer: 1 to 64 bytes.
    buffer_size: u8,
    /// Sockets per container: 1 to 16.
    max_sockets: u8,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Port {
    Zero,
    Few(u8),
    Any(u16),
}

impl Port {
    fn get(self) -> u16 {
        match self {
            Port::Zero => 0,
            Port::Few(n) => 80 + u16::from(n % 3),
            Port::Any(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Addr {
    Loopback4 {
        last: u8,
        port: Port,
    },
    Loopback6(Port),
    Any4(Port),
    Any6(Port),
    /// Beyond the pod: refused without a real socket.
    Other([u8; 4], Port),
}

impl Addr {
    fn get(self) -> SocketAddr {
        match self {
            Addr::Loopback4 { last, port } => {
                SocketAddr::new(Ipv4Addr::new(127, 0, 0, 1 + last % 2).into(), port.get())
            }
            Addr::Loopback6(port) => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port.get()),
            Addr::Any4(port) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port.get()),
            Addr::Any6(port) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port.get()),
            Addr::Other(ip, port) => SocketAddr::new(IpAddr::from(ip), port.get()),
        }
    }
}

/// Which container (`c`) and which of its sockets (`s`, modulo the live ones).
#[derive(Debug, Clone, Copy, Arbitrary)]
struct At {
    c: bool,
    s: u8,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum How {
    Receive,
    Send,
    Both,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    Create {
        c: bool,
        v6: bool,
    },
    Bind(At, Addr),
    SetBacklog(At, u8),
    Listen(At),
    Connect(At, Addr),
    FinishConnect(At),
    Accept(At),
    Write(At, u8),
    /// A write beyond what `check-write` granted: must fail.
    Overwrite(At),
    Read(At, u8),
    Shutdown(At, How),
    DropInput(At),
    DropOutput(At),
    DropSocket {
        at: At,
        streams_first: bool,
    },
    LocalAddress(At),
}

/// What the fuzzer knows of one socket.
struct Sock {
    handle: Socket,
    family: IpAddressFamily,
    input: Option<Input>,
    output: Option<Output>,
    end: Option<End>,
    /// Made by `accept`: holds no port of its own.
    accepted: bool,
    /// Nothing was done with it yet: a bind must succeed unless it conflicts.
    fresh: bool,
    /// The address its lease holds, as it was bound (a wildcard stays a wildcard).
    lease: Option<SocketAddr>,
    sent: Vec<u8>,
    received: Vec<u8>,
    /// `shutdown(receive)`: unread bytes were dropped.
    receive_shut: bool,
    /// (container, index) of the other end.
    peer: Option<(usize, usize)>,
    dropped: bool,
}

impl Sock {
    fn new(handle: Socket, family: IpAddressFamily) -> Sock {
        Sock {
            handle,
            family,
            input: None,
            output: None,
            end: None,
            accepted: false,
            fresh: true,
            lease: None,
            sent: Vec::new(),
            received: Vec::new(),
            receive_shut: false,
            peer: None,
            dropped: false,
        }
    }
}

struct World {
    network: Network,
    buffer_size: usize,
    max_sockets: usize,
    containers: [Container; 2],
    socks: [Vec<Sock>; 2],
    next_byte: u8,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

fn code(result: &Result<impl std::fmt::Debug, Failure>) -> Option<ErrorCode> {
    match result {
        Err(Failure::Code(code)) => Some(*code),
        _ => None,
    }
}

fn family_of(addr: SocketAddr) -> IpAddressFamily {
    if addr.is_ipv6() {
        IpAddressFamily::Ipv6
    } else {
        IpAddressFamily::Ipv4
    }
}

fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.is_ipv6() == b.is_ipv6()
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl World {
    fn new(plan: &Plan) -> World {
        let buffer_size = usize::from(plan.buffer_size % 64) + 1;
        let max_sockets = usize::from(plan.max_sockets % 16) + 1;
        let network = Network::new(NetworkConfig {
            buffer_size,
            max_sockets,
            ..NetworkConfig::default()
        });
        let container = || Container::new(&network).expect("a container");
        World {
            containers: [container(), container()],
            network,
            buffer_size,
            max_sockets,
            socks: [Vec::new(), Vec::new()],
            next_byte: 0,
        }
    }

    /// The index of the `at.s`-th live socket of container `at.c`.
    fn pick(&self, at: At) -> Option<(usize, usize)> {
        let c = usize::from(at.c);
        let live: Vec<usize> = (self.socks[c].iter().enumerate())
            .filter(|(_, s)| !s.dropped)
            .map(|(i, _)| i)
            .collect();
        if live.is_empty() {
            return None;
        }
        Some((c, live[usize::from(at.s) % live.len()]))
    }

    /// Addresses held by live sockets (listening, bound, connecting or connected clients).
    fn held(&mut self) -> Vec<SocketAddr> {
        let mut held = Vec::new();
        for c in 0..2 {
            for sock in self.socks[c].iter().filter(|s| !s.dropped && !s.accepted) {
                let Some(lease) = sock.lease else { continue };
                if self.containers[c].local_address(sock.handle).is_ok() {
                    held.push(lease);
                }
            }
        }
        held
    }

    /// Learns which end of which connection `(c, i)` is, and links it with its peer.
    fn learn_end(&mut self, c: usize, i: usize) {
        if self.socks[c][i].end.is_some() {
            return;
        }
        let handle = self.socks[c][i].handle;
        let Some(end) = self.containers[c].end(handle).expect("a live socket") else {
            return;
        };
        for pc in 0..2 {
            for pi in 0..self.socks[pc].len() {
                let peer = self.socks[pc][pi].end.as_ref();
                if peer.is_some_and(|p| p.is_peer_of(&end)) {
                    assert!(
                        self.socks[pc][pi].peer.is_none(),
                        "a connection with three ends"
                    );
                    self.socks[pc][pi].peer = Some((c, i));
                    self.socks[c][i].peer = Some((pc, pi));
                }
            }
        }
        self.socks[c][i].end = Some(end);
    }

    /// After a successful connect: the lease of a socket that bound none is its ephemeral port.
    fn learn_lease(&mut self, c: usize, i: usize) {
        if self.socks[c][i].lease.is_none() {
            let handle = self.socks[c][i].handle;
            self.socks[c][i].lease = self.containers[c].local_address(handle).ok();
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Create { c, v6 } => {
                let c = usize::from(c);
                let family = if v6 {
                    IpAddressFamily::Ipv6
                } else {
                    IpAddressFamily::Ipv4
                };
                let open = self.socks[c].iter().filter(|s| !s.dropped).count();
                match self.containers[c].create(family) {
                    Ok(handle) => {
                        assert!(open < self.max_sockets, "more sockets than the limit");
                        self.socks[c].push(Sock::new(handle, family));
                    }
                    Err(e) => {
                        assert!(
                            matches!(e, Failure::Code(ErrorCode::NewSocketLimit))
                                && open >= self.max_sockets,
                            "create with {open} of {} open: {e:?}",
                            self.max_sockets
                        );
                    }
                }
            }
            Op::Bind(at, addr) => {
                let Some((c, i)) = self.pick(at) else { return };
                let addr = addr.get();
                let held = self.held();
                let sock = &mut self.socks[c][i];
                let fresh = std::mem::replace(&mut sock.fresh, false);
                let (handle, family) = (sock.handle, sock.family);
                let result = runtime().block_on(self.containers[c].bind(handle, addr));
                let in_pod = addr.ip().is_loopback() || addr.ip().is_unspecified();
                if fresh && in_pod && family_of(addr) == family {
                    let conflict = addr.port() != 0 && held.iter().any(|h| conflicts(*h, addr));
                    if conflict {
                        assert_eq!(
                            code(&result),
                            Some(ErrorCode::AddressInUse),
                            "bind {addr} while {held:?} are held: {result:?}"
                        );
                    } else {
                        assert!(
                            result.is_ok(),
                            "bind {addr} while {held:?} are held: {result:?}"
                        );
                    }
                }
                if result.is_ok() {
                    let local = self.containers[c]
                        .local_address(handle)
                        .expect("a bound socket's address");
                    assert_eq!(local.ip(), addr.ip());
                    assert!(addr.port() == 0 || local.port() == addr.port());
                    assert!(!held.iter().any(|h| conflicts(*h, local)));
                    self.socks[c][i].lease = Some(local);
                }
            }
            Op::SetBacklog(at, n) => {
                let Some((c, i)) = self.pick(at) else { return };
                let handle = self.socks[c][i].handle;
                let _ = self.containers[c].set_backlog(handle, u64::from(n % 4));
            }
            Op::Listen(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                self.socks[c][i].fresh = false;
                let handle = self.socks[c][i].handle;
                if runtime()
                    .block_on(self.containers[c].listen(handle))
                    .is_ok()
                {
                    assert!(self.containers[c].is_listening(handle).expect("a socket"));
                }
            }
            Op::Connect(at, addr) => {
                let Some((c, i)) = self.pick(at) else { return };
                self.socks[c][i].fresh = false;
                let handle = self.socks[c][i].handle;
                if self.containers[c].start_connect(handle, addr.get()).is_ok() {
                    self.learn_lease(c, i);
                    self.learn_end(c, i);
                }
            }
            Op::FinishConnect(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                let handle = self.socks[c][i].handle;
                let ready = self.containers[c].socket_ready(handle).expect("a socket");
                let result = self.containers[c].finish_connect(handle);
                if code(&result) == Some(ErrorCode::WouldBlock) {
                    assert!(!ready, "a ready connecting socket would block");
                }
                if let Ok((input, output)) = result {
                    self.socks[c][i].input = Some(input);
                    self.socks[c][i].output = Some(output);
                    self.learn_lease(c, i);
                    self.learn_end(c, i);
                }
            }
            Op::Accept(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                let handle = self.socks[c][i].handle;
                let listening = self.containers[c].is_listening(handle).expect("a socket");
                let ready = self.containers[c].socket_ready(handle).expect("a socket");
                let result = self.containers[c].accept(handle);
                let code = code(&result);
                if listening && code != Some(ErrorCode::NewSocketLimit) {
                    assert_eq!(
                        ready,
                        code != Some(ErrorCode::WouldBlock),
                        "listener ready: {ready}, accept: {result:?}"
                    );
                }
                if let Ok((socket, input, output)) = result {
                    let family = self.socks[c][i].family;
                    let mut sock = Sock::new(socket, family);
                    sock.accepted = true;
                    sock.fresh = false;
                    sock.input = Some(input);
                    sock.output = Some(output);
                    self.socks[c].push(sock);
                    let j = self.socks[c].len() - 1;
                    self.learn_end(c, j);
                    assert!(
                        self.socks[c][j].peer.is_some(),
                        "an accepted connection nobody made"
                    );
                }
            }
            Op::Write(at, len) => {
                let Some((c, i)) = self.pick(at) else { return };
                let Some(output) = self.socks[c][i].output else {
                    return;
                };
                let ready = self.containers[c].output_ready(output).expect("a stream");
                let permit = self.containers[c].check_write(output).expect("a stream");
                assert_eq!(
                    ready,
                    !matches!(permit, Ok(0)),
                    "output ready: {ready}, check-write: {permit:?}"
                );
                let Ok(permit) = permit else { return };
                assert!(permit <= self.buffer_size, "a permit beyond the buffer");
                let n = usize::from(len).min(permit);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        self.next_byte = self.next_byte.wrapping_add(1);
                        self.next_byte
                    })
                    .collect();
                let written = self.containers[c].write(output, &bytes).expect("a stream");
                assert!(
                    written.is_ok(),
                    "a write within check-write failed: {written:?}"
                );
                self.socks[c][i].sent.extend_from_slice(&bytes);
                let flushed = self.containers[c].flush(output).expect("a stream");
                assert!(
                    flushed.is_ok(),
                    "a flush after a good write failed: {flushed:?}"
                );
            }
            Op::Overwrite(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                let Some(output) = self.socks[c][i].output else {
                    return;
                };
                let Ok(permit) = self.containers[c].check_write(output).expect("a stream") else {
                    return;
                };
                let bytes = vec![0xee; permit + 1];
                let written = self.containers[c].write(output, &bytes).expect("a stream");
                assert!(written.is_err(), "a write beyond check-write was taken");
            }
            Op::Read(at, size) => {
                let Some((c, i)) = self.pick(at) else { return };
                let Some(input) = self.socks[c][i].input else {
                    return;
                };
                let size = usize::from(size % 80) + 1;
                let ready = self.containers[c].input_ready(input).expect("a stream");
                let read = self.containers[c].read(input, size).expect("a stream");
                let nothing = matches!(&read, Ok(bytes) if bytes.is_empty());
                assert_eq!(ready, !nothing, "input ready: {ready}, read: {read:?}");
                let peer_sent: &[u8] = match self.socks[c][i].peer {
                    Some((pc, pi)) => &self.socks[pc][pi].sent,
                    None => &[],
                };
                let sock = &self.socks[c][i];
                match read {
                    Ok(bytes) => {
                        assert!(bytes.len() <= size, "read more than asked");
                        let start = sock.received.len();
                        let expected = peer_sent.get(start..start + bytes.len());
                        assert_eq!(
                            expected,
                            Some(bytes.as_slice()),
                            "read bytes {start}.. that were not sent so"
                        );
                        self.socks[c][i].received.extend_from_slice(&bytes);
                    }
                    Err(StreamError::Closed) if !sock.receive_shut => {
                        assert_eq!(
                            sock.received.len(),
                            peer_sent.len(),
                            "the stream ended before every byte sent was read"
                        );
                    }
                    Err(_) => {}
                }
            }
            Op::Shutdown(at, how) => {
                let Some((c, i)) = self.pick(at) else { return };
                let how = match how {
                    How::Receive => Shutdown::Receive,
                    How::Send => Shutdown::Send,
                    How::Both => Shutdown::Both,
                };
                let handle = self.socks[c][i].handle;
                if self.containers[c].shutdown(handle, how).is_ok() && how != Shutdown::Send {
                    self.socks[c][i].receive_shut = true;
                }
            }
            Op::DropInput(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                if let Some(input) = self.socks[c][i].input.take() {
                    self.containers[c].drop_input(input).expect("drop a stream");
                }
            }
            Op::DropOutput(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                if let Some(output) = self.socks[c][i].output.take() {
                    self.containers[c]
                        .drop_output(output)
                        .expect("drop a stream");
                }
            }
            Op::DropSocket { at, streams_first } => {
                let Some((c, i)) = self.pick(at) else { return };
                if streams_first {
                    self.drop_streams(c, i);
                }
                let sock = &self.socks[c][i];
                let has_streams = sock.input.is_some() || sock.output.is_some();
                let result = self.containers[c].drop_socket(sock.handle);
                if has_streams {
                    assert!(
                        matches!(result, Err(Failure::Trap(_))),
                        "a socket dropped before its streams: {result:?}"
                    );
                } else {
                    result.expect("drop a socket");
                    self.socks[c][i].dropped = true;
                }
            }
            Op::LocalAddress(at) => {
                let Some((c, i)) = self.pick(at) else { return };
                let handle = self.socks[c][i].handle;
                let _ = self.containers[c].local_address(handle);
                let _ = self.containers[c].remote_address(handle);
            }
        }
    }

    fn drop_streams(&mut self, c: usize, i: usize) {
        if let Some(input) = self.socks[c][i].input.take() {
            self.containers[c].drop_input(input).expect("drop a stream");
        }
        if let Some(output) = self.socks[c][i].output.take() {
            self.containers[c]
                .drop_output(output)
                .expect("drop a stream");
        }
    }

    /// Drops everything; then nothing is bound and the socket quota is whole again.
    fn finish(mut self) {
        for c in 0..2 {
            for i in 0..self.socks[c].len() {
                if !self.socks[c][i].dropped {
                    self.drop_streams(c, i);
                    let handle = self.socks[c][i].handle;
                    self.containers[c]
                        .drop_socket(handle)
                        .expect("drop a socket");
                    self.socks[c][i].dropped = true;
                }
            }
        }
        let stats = self.network.stats();
        assert_eq!(stats.bound_addresses, 0, "ports left bound: {stats:?}");
        assert!(stats.peak_buffered_bytes <= self.buffer_size, "{stats:?}");
        for container in &mut self.containers {
            for _ in 0..self.max_sockets {
                container
                    .create(IpAddressFamily::Ipv4)
                    .expect("a socket within the quota");
            }
        }
    }
}

fuzz_target!(|plan: Plan| {
    let mut world = World::new(&plan);
    for op in plan.ops.iter().take(MAX_OPS) {
        world.apply(*op);
    }
    world.finish();
});
