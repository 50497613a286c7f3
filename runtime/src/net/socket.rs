//! The `tcp-socket` resource: a socket of the pod's virtual network, or a real one it delegates
//! to, and the socket-level checks shared by both.

use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::Pollable;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};

use super::SocketPermit;
use super::listen::{Incoming, ListenQueue};
use super::pipe::Endpoint;
use super::ports::PortLease;

/// wasmtime-wasi's socket, which every non-virtual address is handed to.
pub(crate) type RealSocket = wasmtime_wasi::p2::TcpSocket;

/// The listen backlog when the guest sets none: Rust std's, as wasmtime-wasi uses.
pub(crate) const DEFAULT_BACKLOG: u64 = 128;

/// A guest's TCP socket.
pub struct TcpSocket {
    pub(super) family: IpAddressFamily,
    pub(super) state: State,
    /// The `start-*` call awaiting its `finish-*`, for virtual sockets (real ones keep their
    /// own).
    pub(super) in_progress: Option<Op>,
    pub(super) options: Options,
    _permit: SocketPermit,
}

impl std::fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpSocket")
            .field("family", &self.family)
            .field("state", &self.state.name())
            .field("in_progress", &self.in_progress)
            .finish_non_exhaustive()
    }
}

/// An operation between its `start-*` and `finish-*` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Bind,
    Connect,
    Listen,
}

/// Where a socket is in its life.
pub(super) enum State {
    /// Fresh: nothing decided yet.
    Unbound,
    /// Bound in the pod's port table; a wildcard bind also holds its real socket, bound.
    Bound {
        lease: PortLease,
        host: Option<RealSocket>,
    },
    /// Listening in the pod; a wildcard listener also listens for real.
    Listening {
        lease: PortLease,
        queue: Arc<ListenQueue>,
        host: Option<RealSocket>,
        /// Whose turn `accept` serves first when both have connections waiting.
        host_turn: bool,
    },
    /// Connecting to a listener whose backlog is full.
    Connecting(Box<Connecting>),
    /// One end of a virtual connection.
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
        endpoint: Endpoint,
        _lease: Option<PortLease>,
    },
    /// Handed to wasmtime-wasi, not connected yet (bound or listening beyond the pod, or
    /// connecting there): every call is delegated to this socket, lent to the resource table
    /// for the call (`None` meanwhile). It lives here rather than in the table so that this
    /// socket's pollable, which wasi-libc takes once at `socket()` and waits on for `connect`
    /// and `accept`, can await it. A wildcard-bound socket that connected beyond the pod keeps
    /// its port in the pod.
    Host {
        socket: Option<RealSocket>,
        lease: Option<PortLease>,
    },
    /// Connected through wasmtime-wasi: the real socket lives in the resource table, as the
    /// parent of its streams, and every call is delegated to it.
    Real {
        handle: Resource<RealSocket>,
        _lease: Option<PortLease>,
    },
    /// A connect failed: every further call fails with its error.
    Closed(ErrorCode),
}

/// A connection waiting for room in the listener's backlog.
pub(super) struct Connecting {
    pub(super) queue: Arc<ListenQueue>,
    /// The server end, to be queued.
    pub(super) incoming: Option<Incoming>,
    pub(super) endpoint: Endpoint,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    pub(super) lease: PortLease,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Unbound => "unbound",
            State::Bound { .. } => "bound",
            State::Listening { .. } => "listening",
            State::Connecting(_) => "connecting",
            State::Connected { .. } => "connected",
            State::Host { .. } => "host",
            State::Real { .. } => "real",
            State::Closed(_) => "closed",
        }
    }
}

/// Socket options as set by the guest: served from here for virtual sockets, applied to a real
/// socket when one is made.
#[derive(Debug, Clone, Default)]
pub(super) struct Options {
    pub(super) backlog: Option<u64>,
    pub(super) keep_alive: Option<bool>,
    pub(super) keep_alive_idle: Option<u64>,
    pub(super) keep_alive_interval: Option<u64>,
    pub(super) keep_alive_count: Option<u32>,
    pub(super) hop_limit: Option<u8>,
    pub(super) receive_buffer: Option<u64>,
    pub(super) send_buffer: Option<u64>,
}

impl TcpSocket {
    pub(super) fn new(
        family: IpAddressFamily,
        state: State,
        options: Options,
        permit: SocketPermit,
    ) -> Self {
        TcpSocket {
            family,
            state,
            in_progress: None,
            options,
            _permit: permit,
        }
    }

    /// The connection's end, if this is a connected virtual socket.
    pub(super) fn endpoint(&self) -> Option<&Endpoint> {
        match &self.state {
            State::Connected { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TcpSocket {
    async fn ready(&mut self) {
        match &mut self.state {
            State::Listening { queue, host, .. } => {
                let queue = queue.clone();
                let pod = poll_fn(|cx| queue.poll_pending(cx));
                match host {
                    Some(host) => tokio::select! {
                        () = pod => {}
                        () = host.ready() => {}
                    },
                    None => pod.await,
                }
            }
            State::Connecting(connecting) => {
                let queue = connecting.queue.clone();
                poll_fn(|cx| queue.poll_room(cx)).await;
            }
            State::Host {
                socket: Some(host), ..
            } => host.ready().await,
            _ => {}
        }
    }
}

/// Which implementation serves an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// The pod's loopback.
    Pod,
    /// A wildcard: the pod's loopback and the real network.
    Both,
    /// The real network, through wasmtime-wasi.
    Host,
}

impl Route {
    pub(super) fn of(ip: IpAddr, virtual_loopback: bool) -> Route {
        if !virtual_loopback {
            Route::Host
        } else if ip.is_loopback() {
            Route::Pod
        } else if ip.is_unspecified() {
            Route::Both
        } else {
            Route::Host
        }
    }
}

/// The loopback address of `family`.
pub(super) fn loopback(family: IpAddressFamily) -> IpAddr {
    match family {
        IpAddressFamily::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddressFamily::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// Checks a local address as wasmtime-wasi does: unicast, of the socket's family.
pub(super) fn check_local(addr: SocketAddr, family: IpAddressFamily) -> Result<(), ErrorCode> {
    if is_unicast(addr.ip()) && is_of_family(addr.ip(), family) {
        Ok(())
    } else {
        Err(ErrorCode::InvalidArgument)
    }
}

/// Checks a remote address as wasmtime-wasi does: unicast, specified, with a port, of the
/// socket's family.
pub(super) fn check_remote(addr: SocketAddr, family: IpAddressFamily) -> Result<(), ErrorCode> {
    check_local(addr, family)?;
    if addr.ip().to_canonical().is_unspecified() || addr.port() == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(())
}

fn is_unicast(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !v6.is_multicast(),
    }
}

/// IPv6 sockets take neither IPv4-mapped nor (deprecated) IPv4-compatible addresses.
fn is_of_family(ip: IpAddr, family: IpAddressFamily) -> bool {
    match (family, ip) {
        (IpAddressFamily::Ipv4, IpAddr::V4(_)) => true,
        (IpAddressFamily::Ipv6, IpAddr::V6(v6)) => {
            let compatible = matches!(v6.segments(), [0, 0, 0, 0, 0, 0, _, _])
                && v6 != Ipv6Addr::UNSPECIFIED
                && v6 != Ipv6Addr::LOCALHOST;
            !compatible && v6.to_ipv4_mapped().is_none()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn routes() {
        assert_eq!(
            Route::of("127.0.0.1".parse().expect("ip"), true),
            Route::Pod
        );
        assert_eq!(
            Route::of("127.4.5.6".parse().expect("ip"), true),
            Route::Pod
        );
        assert_eq!(Route::of("::1".parse().expect("ip"), true), Route::Pod);
        assert_eq!(Route::of("0.0.0.0".parse().expect("ip"), true), Route::Both);
        assert_eq!(Route::of("::".parse().expect("ip"), true), Route::Both);
        assert_eq!(
            Route::of("10.0.0.1".parse().expect("ip"), true),
            Route::Host
        );
        assert_eq!(
            Route::of("127.0.0.1".parse().expect("ip"), false),
            Route::Host
        );
    }

    #[test]
    fn addresses_are_checked_as_wasmtime_wasi_does() {
        let v4 = IpAddressFamily::Ipv4;
        let v6 = IpAddressFamily::Ipv6;
        assert!(check_local(addr("0.0.0.0:0"), v4).is_ok());
        assert!(check_local(addr("[::1]:80"), v4).is_err());
        assert!(check_local(addr("[::ffff:127.0.0.1]:80"), v6).is_err());
        assert!(check_local(addr("224.0.0.1:80"), v4).is_err());
        assert!(check_remote(addr("127.0.0.1:0"), v4).is_err());
        assert!(check_remote(addr("0.0.0.0:80"), v4).is_err());
        assert!(check_remote(addr("[::1]:80"), v6).is_ok());
    }
}
