//! The host's own sockets in a pod's network: a listener the runtime serves for a container (a
//! `wasi:http` service) and connections the runtime opens on a guest's behalf (its outgoing
//! HTTP requests), as byte streams of tokio.
//!
//! They take part in the pod's port table like a guest's sockets: a service's port is in use
//! for every container of the pod, and its connections are the same bounded pipes.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Network;
use super::listen::{Incoming, ListenQueue, Refused};
use super::pipe::{Connection, HostStream};
use super::ports::{PortError, PortLease};

fn port_error(addr: SocketAddr, error: PortError) -> io::Error {
    let kind = match error {
        PortError::InUse | PortError::Exhausted => io::ErrorKind::AddrInUse,
        PortError::Closed => io::ErrorKind::NotConnected,
    };
    io::Error::new(kind, format!("{addr}: {error}"))
}

impl Network {
    /// Listens on `addr` of the pod's loopback (a wildcard address takes the port on every
    /// loopback address of the pod, as a guest's wildcard bind does): the port is in use for the
    /// pod's guests until the listener is dropped. Connections beyond `backlog` not yet
    /// accepted wait, as a guest's connections to a full queue do.
    pub fn listen(&self, addr: SocketAddr, backlog: usize) -> io::Result<PodListener> {
        let lease = self
            .inner
            .ports
            .reserve(addr)
            .map_err(|e| port_error(addr, e))?;
        let queue = ListenQueue::new(backlog);
        lease.listen(queue.clone());
        Ok(PodListener { lease, queue })
    }

    /// Connects to a listener of the pod's loopback at `addr`, as a guest's `connect` does:
    /// `ConnectionRefused` when nothing listens there; waits while its backlog is full.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<PodStream> {
        let local_ip = match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        let refused = || io::Error::new(io::ErrorKind::ConnectionRefused, addr.to_string());
        let lease = self
            .inner
            .ports
            .reserve(SocketAddr::new(local_ip, 0))
            .map_err(|e| port_error(addr, e))?;
        let local = lease.addr();
        let queue = self.inner.ports.listener(addr).ok_or_else(refused)?;
        let (client, server) =
            Connection::open(self.inner.config.buffer_size, self.inner.stats.clone());
        let mut incoming = Some(Incoming::new(server, addr, local));
        poll_fn(|cx| {
            let Some(offer) = incoming.take() else {
                return Poll::Ready(Err(refused()));
            };
            match queue.offer(offer, Some(cx)) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(Refused::Closed) => Poll::Ready(Err(refused())),
                Err(Refused::Full(back)) => {
                    incoming = Some(back);
                    Poll::Pending
                }
            }
        })
        .await?;
        self.inner.stats.connected();
        Ok(PodStream {
            stream: client.into_host_stream(),
            local,
            remote: addr,
            _lease: Some(lease),
        })
    }
}

/// A listener of the runtime's in a pod's network. Dropping it frees the port and resets the
/// connections not yet accepted.
#[derive(Debug)]
pub struct PodListener {
    lease: PortLease,
    queue: Arc<ListenQueue>,
}

impl PodListener {
    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.lease.addr()
    }

    /// The next connection.
    pub async fn accept(&self) -> io::Result<PodStream> {
        loop {
            poll_fn(|cx| self.queue.poll_pending(cx)).await;
            let Some(incoming) = self.queue.accept() else {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the pod's network is closed",
                ));
            };
            let (local, remote) = (incoming.local, incoming.remote);
            if let Some(endpoint) = incoming.take() {
                return Ok(PodStream {
                    stream: endpoint.into_host_stream(),
                    local,
                    remote,
                    _lease: None,
                });
            }
        }
    }
}

impl Drop for PodListener {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// One connection of a pod's network, seen from the host: tokio's `AsyncRead` and
/// `AsyncWrite`. `shutdown` is a FIN; dropping it with bytes unread resets the connection.
#[derive(Debug)]
pub struct PodStream {
    stream: HostStream,
    local: SocketAddr,
    remote: SocketAddr,
    /// The connecting side's ephemeral port, held while connected.
    _lease: Option<PortLease>,
}

impl PodStream {
    /// This end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.remote
    }
}

impl AsyncRead for PodStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PodStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Sends `request` over HTTP/1.1 on `stream` (a connection to a pod's listener) and returns
/// the whole response; the connection ends with it.
pub async fn http1_request<S>(
    stream: S,
    request: http::Request<bytes::Bytes>,
) -> io::Result<http::Response<bytes::Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
    let connection = tokio::spawn(connection);
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, http_body_util::Full::new(body));
    let answered = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(io::Error::other)?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .map_err(io::Error::other)?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
    .await;
    connection.abort();
    answered
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::net::NetworkConfig;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[tokio::test]
    async fn a_host_listener_holds_its_port_and_talks_to_a_host_client() {
        let net = Network::new(NetworkConfig {
            buffer_size: 8,
            ..NetworkConfig::default()
        });
        let listener = net.listen(addr("0.0.0.0:8080"), 4).expect("listen");
        assert_eq!(
            net.listen(addr("127.0.0.1:8080"), 4)
                .map(|_| ())
                .map_err(|e| e.kind()),
            Err(io::ErrorKind::AddrInUse),
        );
        assert_eq!(net.listening(), vec![addr("0.0.0.0:8080")]);
        let mut client = net.connect(addr("127.0.0.1:8080")).await.expect("connect");
        let mut server = listener.accept().await.expect("accept");
        assert_eq!(server.peer_addr(), client.local_addr());
        // More than one pipe's worth each way: writers wait for their readers.
        let sent = vec![7u8; 100];
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.expect("write");
            client.shutdown().await.expect("shutdown");
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.expect("read back");
            back
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("read");
        assert_eq!(got.len(), 100);
        server.write_all(b"done").await.expect("reply");
        drop(server);
        assert_eq!(writer.await.expect("join"), b"done");
        drop(listener);
        let refused = net.connect(addr("127.0.0.1:8080")).await.map(|_| ());
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionRefused)
        );
        assert_eq!(net.stats().bound_addresses, 0, "every port is released");
    }
}
