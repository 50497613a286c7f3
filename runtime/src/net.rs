//! The pod's virtual network: `wasi:sockets` TCP on loopback, served inside the process.
//!
//! In Kubernetes every container of a pod shares one network stack: a sidecar reaches its app
//! on `127.0.0.1:PORT`, and two containers cannot bind the same port. wasmpod gives each pod
//! such a stack without the kernel. A [`Network`] belongs to one sandbox; each container's
//! store gets a handle to it, and `wasi:sockets/tcp`, `tcp-create-socket` and
//! `ip-name-lookup` are served by this module (registered over wasmtime-wasi's, which still serve everything else):
//!
//! - **Loopback** (127.0.0.0/8, `::1`) is virtual: binds take ports in the pod's port table
//!   (`address-in-use` when any container of the pod holds a conflicting one; ephemeral ports
//!   for port 0 and for connecting sockets), connections are pairs of bounded in-memory pipes,
//!   `connection-refused` when nothing listens. Bytes between containers never touch a kernel
//!   socket, and pods never see each other's listeners, even in one process.
//! - **Wildcard** binds (`0.0.0.0`, `::`) listen on both: the pod's loopback, and a real socket
//!   on the same port in the process's network namespace (the pod's own when the host layer
//!   made one, else the host's), so clients outside the pod reach it too; `accept` takes from
//!   either, in turn. When the real bind is not permitted (a port below 1024 without
//!   privileges), the socket stays virtual only and a warning is logged.
//! - **Every other address** is handed to wasmtime-wasi's real implementation, subject to the
//!   [`NetworkPolicy`].
//! - **Names** (`wasi:sockets/ip-name-lookup`): `localhost` is the pod's loopback under every
//!   policy, as a container's `/etc/hosts` has it; other names go to the host's resolver
//!   unless the policy is [`NetworkPolicy::PodOnly`].
//!
//! Flow control: each direction of a connection buffers at most
//! [`NetworkConfig::buffer_size`] bytes; a writer ahead of its reader waits. Each container
//! may hold at most [`NetworkConfig::max_sockets`] TCP sockets; the next one fails with
//! `new-socket-limit` (`EMFILE` in the guest). Closing follows the kernel: dropping a socket's
//! output is a FIN; dropping its input with unread bytes resets the connection, so when a
//! container dies its peers see the end of the stream or a reset, never a hang.
//!
//! UDP is not virtualized: it goes to real sockets through wasmtime-wasi (under
//! [`NetworkPolicy::PodOnly`] sending is denied), so UDP on loopback is the network
//! namespace's: isolated per pod only when the pod has a namespace of its own.
//!
//! wasip1 modules have no sockets at all; networking guests are wasip2 components.

mod bindings;
pub(crate) mod dns;
#[doc(hidden)]
pub mod fuzzing;
mod host;
mod listen;
pub(crate) mod lookup;
mod pipe;
mod ports;
mod service;
mod socket;

pub use dns::NameService;
pub use service::{PodListener, PodStream, http1_request};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtx};

use ports::PortTable;

/// A network setting could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Not a policy name.
    #[error("unknown network policy {0:?} (expected `pod` or `pod-only`)")]
    UnknownPolicy(String),
}

/// What a pod's guests may reach beyond the pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NetworkPolicy {
    /// The pod's loopback, and anything else the host can reach (as in Kubernetes).
    #[default]
    Pod,
    /// Only the pod: connections to addresses outside it, UDP sends and name lookups are denied
    /// (`access-denied`), except of `localhost`, the pod's own loopback. Listening on a
    /// wildcard address still accepts clients from outside.
    PodOnly,
}

impl NetworkPolicy {
    /// The policy's name: `pod` or `pod-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkPolicy::Pod => "pod",
            NetworkPolicy::PodOnly => "pod-only",
        }
    }

    /// Whether a real socket may use `addr` for `what`.
    fn allows(self, addr: SocketAddr, what: SocketAddrUse) -> bool {
        match (self, what) {
            (NetworkPolicy::Pod, _) => true,
            // Loopback reaches the host's kernel only when the virtual loopback is off.
            (NetworkPolicy::PodOnly, SocketAddrUse::TcpConnect) => addr.ip().is_loopback(),
            (NetworkPolicy::PodOnly, SocketAddrUse::UdpSend) => false,
            (NetworkPolicy::PodOnly, _) => true,
        }
    }
}

impl std::fmt::Display for NetworkPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for NetworkPolicy {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        match s {
            "pod" => Ok(NetworkPolicy::Pod),
            "pod-only" => Ok(NetworkPolicy::PodOnly),
            _ => Err(NetError::UnknownPolicy(s.to_owned())),
        }
    }
}

/// How a pod's network behaves. Every default is documented on its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// What guests may reach beyond the pod. Default: [`NetworkPolicy::Pod`].
    pub policy: NetworkPolicy,
    /// Bytes buffered in each direction of a virtual connection. Default: 256 KiB.
    pub buffer_size: usize,
    /// TCP sockets one container may hold at once (listening, connected, accepted).
    /// Default: 1024.
    pub max_sockets: usize,
    /// Serve loopback in-process. `false` hands loopback to the host's kernel like any other
    /// address (pods are then not isolated): for comparisons and debugging. Default: `true`.
    pub virtual_loopback: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            policy: NetworkPolicy::Pod,
            buffer_size: 256 << 10,
            max_sockets: 1024,
            virtual_loopback: true,
        }
    }
}

/// Counters of a pod's network, for tests, benchmarks and debugging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Virtual connections established.
    pub connections: u64,
    /// Connections accepted from outside the pod by wildcard listeners.
    pub host_accepts: u64,
    /// The most bytes any one direction of a virtual connection ever held: never more than
    /// [`NetworkConfig::buffer_size`].
    pub peak_buffered_bytes: usize,
    /// Addresses bound in the pod right now.
    pub bound_addresses: usize,
}

/// Counters shared by a network's connections.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    connections: AtomicU64,
    host_accepts: AtomicU64,
    peak_buffered: AtomicUsize,
}

impl Stats {
    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn host_accepted(&self) {
        self.host_accepts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_buffered(&self, bytes: usize) {
        self.peak_buffered.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NetworkStats {
        NetworkStats {
            connections: self.connections.load(Ordering::Relaxed),
            host_accepts: self.host_accepts.load(Ordering::Relaxed),
            peak_buffered_bytes: self.peak_buffered.load(Ordering::Relaxed),
            bound_addresses: 0,
        }
    }
}

/// One pod's network. Cheap to clone; clones are the same network.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    config: NetworkConfig,
    ports: Arc<PortTable>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Network {
    /// A network of its own with the default configuration.
    fn default() -> Self {
        Network::new(NetworkConfig::default())
    }
}

impl Network {
    /// A new, empty network.
    pub fn new(config: NetworkConfig) -> Self {
        Network {
            inner: Arc::new(Inner {
                config,
                ports: Arc::default(),
                stats: Arc::default(),
            }),
        }
    }

    /// The network's configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.inner.config
    }

    /// The network's counters.
    pub fn stats(&self) -> NetworkStats {
        NetworkStats {
            bound_addresses: self.inner.ports.bound(),
            ..self.inner.stats.snapshot()
        }
    }

    /// The addresses the pod's sockets listen on (`netstat -tln`), sorted. A wildcard
    /// listener is also served on the pod's real network namespace.
    pub fn listening(&self) -> Vec<std::net::SocketAddr> {
        self.inner.ports.listening()
    }

    /// Closes the network with its pod: every further bind or connect fails.
    pub fn close(&self) {
        self.inner.ports.close();
    }

    /// A handle for one container's store; its name lookups go to `names` (the container's
    /// own files), else to the host's resolver.
    pub(crate) fn container(&self, names: Option<NameService>) -> ContainerNet {
        ContainerNet {
            network: self.clone(),
            open: Arc::default(),
            names,
        }
    }

    /// Whether `ip` is served by the pod's own loopback (not the host's kernel).
    pub(crate) fn is_pod_address(&self, ip: std::net::IpAddr) -> bool {
        self.inner.config.virtual_loopback && ip.is_loopback()
    }

    /// Whether a real TCP connection to `addr` is allowed by the pod's policy.
    pub(crate) fn may_connect(&self, addr: SocketAddr) -> bool {
        (self.inner.config.policy).allows(addr, SocketAddrUse::TcpConnect)
    }

    /// Lets the WASI context use real sockets as the policy says: TCP and UDP through
    /// wasmtime-wasi for everything this module does not serve. (Name lookups are served
    /// here, see `lookup`.)
    pub(crate) fn configure_wasi(&self, builder: &mut WasiCtxBuilder) {
        let policy = self.inner.config.policy;
        builder
            .allow_tcp(true)
            .allow_udp(true)
            .socket_addr_check(move |addr, what| {
                let allowed = policy.allows(addr, what);
                Box::pin(async move { allowed })
            });
    }
}

/// One container's handle to its pod's network: counts the container's sockets.
#[derive(Debug)]
pub(crate) struct ContainerNet {
    network: Network,
    open: Arc<AtomicUsize>,
    names: Option<NameService>,
}

impl ContainerNet {
    /// Room for one more socket, held until the socket is dropped.
    fn permit(&self) -> Result<SocketPermit, ErrorCode> {
        let limit = self.network.inner.config.max_sockets;
        if self.open.fetch_add(1, Ordering::Relaxed) >= limit {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(ErrorCode::NewSocketLimit);
        }
        Ok(SocketPermit(self.open.clone()))
    }

    fn config(&self) -> &NetworkConfig {
        &self.network.inner.config
    }

    fn names(&self) -> Option<&NameService> {
        self.names.as_ref()
    }

    fn ports(&self) -> &Arc<PortTable> {
        &self.network.inner.ports
    }

    fn stats(&self) -> &Arc<Stats> {
        &self.network.inner.stats
    }
}

/// One socket's place in its container's count.
#[derive(Debug)]
struct SocketPermit(Arc<AtomicUsize>);

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the TCP host functions work with: the store's resource table, its WASI sockets
/// context (for the real sockets) and the container's network handle.
pub(crate) struct NetView<'a> {
    /// The store's resource table.
    pub(crate) table: &'a mut ResourceTable,
    /// wasmtime-wasi's sockets context, which real sockets are made with.
    pub(crate) wasi: &'a mut WasiSocketsCtx,
    /// The container's network.
    pub(crate) net: &'a ContainerNet,
}

/// Store data that serves the virtual network.
pub(crate) trait NetworkView: Send {
    /// The view the TCP host functions get.
    fn network(&mut self) -> NetView<'_>;
}

/// `HasData` of the TCP interfaces.
struct VirtualTcp;

impl HasData for VirtualTcp {
    type Data<'a> = NetView<'a>;
}

/// Registers `wasi:sockets/tcp`, `tcp-create-socket` and `ip-name-lookup`. Call it after wasmtime-wasi's
/// `add_to_linker_async`, with shadowing allowed, to replace wasmtime-wasi's versions.
pub(crate) fn add_to_linker<T: NetworkView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::tcp::add_to_linker::<T, VirtualTcp>(linker, T::network)?;
    bindings::tcp_create_socket::add_to_linker::<T, VirtualTcp>(linker, T::network)?;
    bindings::ip_name_lookup::add_to_linker::<T, VirtualTcp>(linker, T::network)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        for policy in [NetworkPolicy::Pod, NetworkPolicy::PodOnly] {
            assert_eq!(policy.as_str().parse::<NetworkPolicy>(), Ok(policy));
        }
        assert!("host".parse::<NetworkPolicy>().is_err());
    }

    #[test]
    fn pod_only_denies_leaving_the_pod() {
        let outside: SocketAddr = "192.0.2.1:80".parse().expect("address");
        let loopback: SocketAddr = "127.0.0.1:80".parse().expect("address");
        let only = NetworkPolicy::PodOnly;
        assert!(!only.allows(outside, SocketAddrUse::TcpConnect));
        assert!(!only.allows(loopback, SocketAddrUse::UdpSend));
        assert!(only.allows(outside, SocketAddrUse::TcpBind));
        assert!(only.allows(outside, SocketAddrUse::TcpAccept));
        assert!(NetworkPolicy::Pod.allows(outside, SocketAddrUse::TcpConnect));
    }

    #[test]
    fn the_socket_cap_counts_live_sockets() {
        let net = Network::new(NetworkConfig {
            max_sockets: 2,
            ..NetworkConfig::default()
        })
        .container(None);
        let a = net.permit().expect("first");
        let _b = net.permit().expect("second");
        assert!(matches!(net.permit(), Err(ErrorCode::NewSocketLimit)));
        drop(a);
        assert!(net.permit().is_ok());
    }
}
