//! A driver of the pod's virtual loopback outside a guest, for the fuzzer (`fuzz/`) and tests.
//!
//! A [`Container`] is what one container's store holds for the network — a resource table, a
//! WASI sockets context and the container's handle to the pod's [`Network`] — and its methods
//! are the guest's `wasi:sockets/tcp` and `wasi:io/streams` calls, made through the same host
//! functions a guest's calls reach. Its WASI context allows no real sockets: binds and connects
//! beyond the pod's loopback fail (`access-denied`), and a wildcard bind serves the pod only,
//! so nothing here touches the kernel's network.
//!
//! Not a stable API: hidden from the docs, shaped by what the fuzzer needs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::instance_network::Host as _;
use wasmtime_wasi::p2::bindings::sockets::network::Network as WasiNetwork;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, Pollable, SocketError, StreamResult};
use wasmtime_wasi::sockets::{WasiSocketsCtx, WasiSocketsCtxView};

pub use wasmtime_wasi::p2::StreamError;
pub use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};

use super::bindings::tcp::{HostTcpSocket as _, ShutdownType};
use super::bindings::tcp_create_socket::Host as _;
use super::pipe::Endpoint;
use super::socket::TcpSocket;
use super::{ContainerNet, NetView, Network};

/// Why a socket call failed.
#[derive(Debug)]
pub enum Failure {
    /// The error code the guest gets.
    Code(ErrorCode),
    /// A trap: the guest would be killed (for example, dropping a socket whose streams live).
    Trap(String),
}

impl From<SocketError> for Failure {
    fn from(error: SocketError) -> Self {
        match error.downcast() {
            Ok(code) => Failure::Code(code),
            Err(trap) => Failure::Trap(trap.to_string()),
        }
    }
}

impl From<wasmtime::component::ResourceTableError> for Failure {
    fn from(error: wasmtime::component::ResourceTableError) -> Self {
        Failure::Trap(error.to_string())
    }
}

impl From<wasmtime::Error> for Failure {
    fn from(error: wasmtime::Error) -> Self {
        Failure::Trap(error.to_string())
    }
}

/// The result of a socket call.
pub type Result<T> = std::result::Result<T, Failure>;

/// A socket, as the guest's handle to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Socket(u32);

/// A connection's input stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Input(u32);

/// A connection's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Output(u32);

/// `shutdown`'s argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Stop receiving: unread bytes are dropped.
    Receive,
    /// Stop sending: the peer reads the rest, then the end of the stream.
    Send,
    /// Both.
    Both,
}

/// One end of a virtual connection, to tell which sockets are connected to each other. Holding
/// it changes nothing about the connection.
#[derive(Debug, Clone)]
pub struct End(Endpoint);

impl End {
    /// Whether `other` is the other end of this connection.
    pub fn is_peer_of(&self, other: &End) -> bool {
        self.0.is_peer_of(&other.0)
    }
}

/// One container's view of its pod's network, as its store holds it.
pub struct Container {
    table: ResourceTable,
    wasi: WasiSocketsCtx,
    net: ContainerNet,
    network: Resource<WasiNetwork>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

fn borrow<T: 'static>(rep: u32) -> Resource<T> {
    Resource::new_borrow(rep)
}

impl Container {
    /// A new container of `network`'s pod.
    pub fn new(network: &Network) -> Result<Self> {
        let mut table = ResourceTable::new();
        // The default context allows no real sockets.
        let mut wasi = WasiSocketsCtx::default();
        let network_handle = WasiSocketsCtxView {
            ctx: &mut wasi,
            table: &mut table,
        }
        .instance_network()?;
        Ok(Container {
            table,
            wasi,
            net: network.container(None),
            network: network_handle,
        })
    }

    fn view(&mut self) -> NetView<'_> {
        NetView {
            table: &mut self.table,
            wasi: &mut self.wasi,
            net: &self.net,
        }
    }

    /// `create-tcp-socket`.
    pub fn create(&mut self, family: IpAddressFamily) -> Result<Socket> {
        let socket = self.view().create_tcp_socket(family)?;
        Ok(Socket(socket.rep()))
    }

    /// `start-bind` then `finish-bind`.
    pub async fn bind(&mut self, socket: Socket, addr: SocketAddr) -> Result<()> {
        let network = borrow(self.network.rep());
        let mut view = self.view();
        view.start_bind(borrow(socket.0), network, addr.into())
            .await?;
        view.finish_bind(borrow(socket.0))?;
        Ok(())
    }

    /// `set-listen-backlog-size`.
    pub fn set_backlog(&mut self, socket: Socket, backlog: u64) -> Result<()> {
        Ok(self
            .view()
            .set_listen_backlog_size(borrow(socket.0), backlog)?)
    }

    /// `start-listen` then `finish-listen`.
    pub async fn listen(&mut self, socket: Socket) -> Result<()> {
        let mut view = self.view();
        view.start_listen(borrow(socket.0)).await?;
        view.finish_listen(borrow(socket.0))?;
        Ok(())
    }

    /// `start-connect`.
    pub fn start_connect(&mut self, socket: Socket, addr: SocketAddr) -> Result<()> {
        let network = borrow(self.network.rep());
        Ok(self
            .view()
            .start_connect(borrow(socket.0), network, addr.into())?)
    }

    /// `finish-connect`: `would-block` while the listener's backlog is full.
    pub fn finish_connect(&mut self, socket: Socket) -> Result<(Input, Output)> {
        let (input, output) = self.view().finish_connect(borrow(socket.0))?;
        Ok((Input(input.rep()), Output(output.rep())))
    }

    /// `accept`.
    pub fn accept(&mut self, socket: Socket) -> Result<(Socket, Input, Output)> {
        let (socket, input, output) = self.view().accept(borrow(socket.0))?;
        Ok((
            Socket(socket.rep()),
            Input(input.rep()),
            Output(output.rep()),
        ))
    }

    /// `local-address`.
    pub fn local_address(&mut self, socket: Socket) -> Result<SocketAddr> {
        Ok(self.view().local_address(borrow(socket.0))?.into())
    }

    /// `remote-address`.
    pub fn remote_address(&mut self, socket: Socket) -> Result<SocketAddr> {
        Ok(self.view().remote_address(borrow(socket.0))?.into())
    }

    /// `is-listening`.
    pub fn is_listening(&mut self, socket: Socket) -> Result<bool> {
        Ok(self.view().is_listening(borrow(socket.0))?)
    }

    /// `shutdown`.
    pub fn shutdown(&mut self, socket: Socket, how: Shutdown) -> Result<()> {
        let how = match how {
            Shutdown::Receive => ShutdownType::Receive,
            Shutdown::Send => ShutdownType::Send,
            Shutdown::Both => ShutdownType::Both,
        };
        Ok(self.view().shutdown(borrow(socket.0), how)?)
    }

    /// Drops the socket, as the guest's resource drop does: a trap while its streams live.
    pub fn drop_socket(&mut self, socket: Socket) -> Result<()> {
        Ok(self.view().drop(Resource::new_own(socket.0))?)
    }

    /// Whether the socket's pollable is ready now (polled once, never waiting).
    pub fn socket_ready(&mut self, socket: Socket) -> Result<bool> {
        let socket = self.table.get_mut(&borrow::<TcpSocket>(socket.0))?;
        Ok(ready_now(socket))
    }

    /// The connection a connected socket is an end of.
    pub fn end(&mut self, socket: Socket) -> Result<Option<End>> {
        let socket = self.table.get(&borrow::<TcpSocket>(socket.0))?;
        Ok(socket.endpoint().cloned().map(End))
    }

    /// `input-stream.read`.
    pub fn read(&mut self, input: Input, size: usize) -> Result<StreamResult<Vec<u8>>> {
        let stream = self.table.get_mut(&borrow::<DynInputStream>(input.0))?;
        Ok(stream.read(size).map(|bytes| bytes.to_vec()))
    }

    /// Whether the input stream's pollable is ready now (polled once, never waiting).
    pub fn input_ready(&mut self, input: Input) -> Result<bool> {
        let stream = self.table.get_mut(&borrow::<DynInputStream>(input.0))?;
        Ok(ready_now(stream.as_mut()))
    }

    /// Drops the input stream.
    pub fn drop_input(&mut self, input: Input) -> Result<()> {
        self.table
            .delete(Resource::<DynInputStream>::new_own(input.0))?;
        Ok(())
    }

    /// `output-stream.check-write`.
    pub fn check_write(&mut self, output: Output) -> Result<StreamResult<usize>> {
        let stream = self.table.get_mut(&borrow::<DynOutputStream>(output.0))?;
        Ok(stream.check_write())
    }

    /// `output-stream.write` of `bytes` (a copy, as wasmtime makes of the guest's memory).
    pub fn write(&mut self, output: Output, bytes: &[u8]) -> Result<StreamResult<()>> {
        let stream = self.table.get_mut(&borrow::<DynOutputStream>(output.0))?;
        Ok(stream.write(bytes::Bytes::copy_from_slice(bytes)))
    }

    /// `output-stream.flush`.
    pub fn flush(&mut self, output: Output) -> Result<StreamResult<()>> {
        let stream = self.table.get_mut(&borrow::<DynOutputStream>(output.0))?;
        Ok(stream.flush())
    }

    /// Whether the output stream's pollable is ready now (polled once, never waiting).
    pub fn output_ready(&mut self, output: Output) -> Result<bool> {
        let stream = self.table.get_mut(&borrow::<DynOutputStream>(output.0))?;
        Ok(ready_now(stream.as_mut()))
    }

    /// Drops the output stream.
    pub fn drop_output(&mut self, output: Output) -> Result<()> {
        self.table
            .delete(Resource::<DynOutputStream>::new_own(output.0))?;
        Ok(())
    }
}

/// Polls a pollable's `ready` once.
fn ready_now(pollable: &mut (impl Pollable + ?Sized)) -> bool {
    let future = pin!(pollable.ready());
    poll_once(future).is_ready()
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetworkConfig;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    /// Runs a future that must not wait (the virtual network never does for these calls).
    fn now<F: Future>(future: F) -> F::Output {
        match poll_once(pin!(future)) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("a virtual socket call waited"),
        }
    }

    #[test]
    fn two_containers_talk_over_the_loopback() {
        let network = Network::new(NetworkConfig {
            buffer_size: 4,
            ..NetworkConfig::default()
        });
        let mut server = Container::new(&network).expect("server");
        let mut client = Container::new(&network).expect("client");
        let listener = server.create(IpAddressFamily::Ipv4).expect("socket");
        now(server.bind(listener, addr("127.0.0.1:80"))).expect("bind");
        now(server.listen(listener)).expect("listen");

        let other = client.create(IpAddressFamily::Ipv4).expect("socket");
        assert!(matches!(
            now(client.bind(other, addr("0.0.0.0:80"))),
            Err(Failure::Code(ErrorCode::AddressInUse))
        ));
        let socket = client.create(IpAddressFamily::Ipv4).expect("socket");
        client
            .start_connect(socket, addr("127.0.0.1:80"))
            .expect("connect");
        let (c_in, c_out) = client.finish_connect(socket).expect("connected");
        let (accepted, s_in, _s_out) = server.accept(listener).expect("accept");
        let (client_end, server_end) = (
            client.end(socket).expect("socket").expect("connected"),
            server.end(accepted).expect("socket").expect("connected"),
        );
        assert!(client_end.is_peer_of(&server_end));

        assert_eq!(client.check_write(c_out).expect("stream").ok(), Some(4));
        client
            .write(c_out, b"ping")
            .expect("stream")
            .expect("write");
        assert!(!client.output_ready(c_out).expect("stream"));
        assert!(server.input_ready(s_in).expect("stream"));
        let read = server.read(s_in, 16).expect("stream").expect("read");
        assert_eq!(read, b"ping");
        client.shutdown(socket, Shutdown::Send).expect("shutdown");
        assert!(matches!(
            server.read(s_in, 16).expect("stream"),
            Err(StreamError::Closed)
        ));

        assert!(matches!(client.drop_socket(socket), Err(Failure::Trap(_))));
        client.drop_input(c_in).expect("drop");
        client.drop_output(c_out).expect("drop");
        client.drop_socket(socket).expect("drop");
        server.drop_socket(listener).expect("drop");
        assert_eq!(network.stats().bound_addresses, 0);
        now(client.bind(other, addr("0.0.0.0:80"))).expect("the port is free again");
    }
}
