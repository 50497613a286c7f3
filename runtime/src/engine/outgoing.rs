//! `wasi:http/outgoing-handler`: a guest's HTTP requests, sent from inside its pod.
//!
//! wasmtime-wasi-http's own client connects by name through the host's resolver, straight to
//! the host's network. A container's requests must instead see what its sockets see:
//! `localhost` and 127.0.0.0/8 are the pod's virtual loopback (a sibling container's server),
//! names resolve through the container's own `/etc/hosts` and `/etc/resolv.conf` (cluster DNS
//! under kubelet), and the pod's [`NetworkPolicy`](crate::net::NetworkPolicy) decides what
//! may leave the pod (`HTTP-request-denied` otherwise). TLS (`https`) is rustls with the
//! webpki roots, as wasmtime's client.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::net::{NameService, Network};

/// How long a connection may take when the guest set no timeout (wasmtime's client waits
/// ten minutes; a pod's requests are expected to be quicker to fail).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `wasi:http` hooks of one container's store: where its outgoing requests go.
#[derive(Debug, Clone)]
pub(crate) struct PodHttp {
    network: Network,
    names: Option<NameService>,
}

impl PodHttp {
    pub(crate) fn new(network: Network, names: Option<NameService>) -> Self {
        PodHttp { network, names }
    }
}

/// A response, and the future that drives its connection to the end.
type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

impl WasiHttpHooks for PodHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, Error>> + Send> {
        drop(fut);
        let this = self.clone();
        Box::new(this.send(request, options))
    }
}

/// A byte stream the request goes over: a virtual connection of the pod, a TCP connection,
/// either under TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

impl PodHttp {
    async fn send(
        self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let uri = request.uri();
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = authority.host().to_owned();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(CONNECT_TIMEOUT);
        let first_byte_timeout = options.and_then(|o| o.first_byte_timeout);

        let stream = tokio::time::timeout(connect_timeout, self.connect(&host, port))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        let stream: Box<dyn Stream> = if tls {
            Box::new(handshake_tls(&host, stream).await?)
        } else {
            stream
        };
        let (mut sender, connection) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Hyper)?;
        let mut connection = Box::pin(connection);

        // On the wire the request line carries the path only (the authority is in `host`).
        let path = (request.uri().path_and_query()).map_or("/", |p| p.as_str());
        *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
        let response = async {
            let sent = sender.send_request(request);
            match first_byte_timeout {
                None => sent.await.map_err(Error::Hyper),
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| Error::ConnectionReadTimeout)?
                    .map_err(Error::Hyper),
            }
        };
        // The connection is driven while the response head is awaited.
        let response = tokio::select! {
            response = response => response?,
            ended = &mut connection => {
                ended.map_err(Error::Hyper)?;
                return Err(Error::HttpResponseIncomplete);
            }
        };
        let response = response.map(|body| body.map_err(Error::Hyper).boxed_unsync());
        let driver = async move { connection.await.map_err(Error::Hyper) };
        Ok((response, Box::new(driver)))
    }

    /// Connects to `host:port` as the container's sockets would: the first address its name
    /// resolves to that the pod may reach.
    async fn connect(&self, host: &str, port: u16) -> Result<Box<dyn Stream>, Error> {
        let addresses = crate::net::lookup::resolve_name(host, self.names.clone())
            .await
            .map_err(|code| Error::DnsError {
                rcode: Some(format!("{code:?}")),
                info_code: None,
            })?;
        let mut last = Error::DestinationNotFound;
        for ip in addresses {
            let addr = SocketAddr::new(ip, port);
            let connected: Result<Box<dyn Stream>, Error> = if self.network.is_pod_address(ip) {
                match self.network.connect(addr).await {
                    Ok(stream) => Ok(Box::new(stream)),
                    Err(_) => Err(Error::ConnectionRefused),
                }
            } else if !self.network.may_connect(addr) {
                Err(Error::HttpRequestDenied)
            } else {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => Ok(Box::new(stream)),
                    Err(e) => Err(Error::Connect(e)),
                }
            };
            match connected {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// TLS over `stream`, verifying the server is `host` against the webpki roots.
async fn handshake_tls(
    host: &str,
    stream: Box<dyn Stream>,
) -> Result<tokio_rustls::client::TlsStream<Box<dyn Stream>>, Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::InternalError(Some(e.to_string())))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let name = match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(Error::InvalidDnsNameError)?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(Error::Tls)
}
