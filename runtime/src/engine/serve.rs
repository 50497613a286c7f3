//! Serving a `wasi:http` service: HTTP/1.1 on the container's port, a fresh instance per
//! request, as `wasmtime serve` does.
//!
//! The service listens on its port of the pod's loopback (siblings reach it at
//! `127.0.0.1:PORT`) and on a real socket in the process's network namespace (the pod's own
//! under the host layer: clients outside reach it at the pod's address), with keep-alive.
//! Each request runs in a store of its own, held to the container's memory limit; the
//! container's CPU limit throttles all of them together. At most
//! [`ServiceConfig::max_concurrency`] requests run at once; the next is answered
//! `503 Service Unavailable` at once. A request whose instance traps (or runs out of memory)
//! is answered `500` and its error written to the container's stderr: its neighbours go on.
//!
//! Clients cannot hold the pod process's resources: a connection must send its request head
//! within [`ServiceLimits::header_timeout`] (slowloris), and at most
//! [`ServiceLimits::max_connections`] are open at once (further clients wait in the listen
//! queue).
//!
//! Termination (the container's termination request) stops accepting and lets the requests in
//! flight finish; once they have, the container exits 0. A hard stop drops them all.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::OutputStream;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::image::one_line;
use super::run::{ExitStatus, GuestIo, Invocation, classify};
use super::{Engine, Image, StoreData};
use crate::net::{Network, PodListener};

/// After a failed `accept` (out of descriptors...), the pause before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How many requests a service takes at once. Every default is documented on its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Instances running at once. Each takes a slot of the engine's instance pool (a Rust
    /// component takes about three core instances of [`ONE_POD_INSTANCES`]). Default: 50.
    ///
    /// [`ONE_POD_INSTANCES`]: super::ONE_POD_INSTANCES
    pub max_concurrency: usize,
    /// Requests waiting for an instance; one more is answered `503`. Default: 200.
    pub max_queued: usize,
    /// Connections open at once; more wait to be accepted. Default: 4096.
    pub max_connections: usize,
    /// How long a client may take to send a request's head, the first or the next on a
    /// kept-alive connection, before it is closed. Default: 30 s (hyper's, which needs a
    /// timer to be enforced at all).
    pub header_timeout: Duration,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            max_concurrency: 50,
            max_queued: 200,
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// How a service is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The port it listens on: the container's first `containerPort`, else 8080.
    pub port: u16,
    /// Its limits.
    pub limits: ServiceLimits,
}

/// A service's listening sockets, bound before it is reported running.
#[derive(Debug)]
pub struct ServiceListeners {
    config: ServiceConfig,
    /// `0.0.0.0:PORT` of the pod's loopback (absent when the virtual loopback is off).
    pod: Option<PodListener>,
    /// `0.0.0.0:PORT` of the process's network namespace, if it could be bound.
    host: Option<std::net::TcpListener>,
}

impl ServiceListeners {
    /// Binds the service's port, on the pod's loopback and in the process's network namespace.
    /// A port the pod already uses is an error, as it is for a guest's bind; so is one taken in
    /// the namespace, except that a port the process may not bind (below 1024 without
    /// privileges) stays on the pod's loopback with a warning.
    pub fn bind(network: &Network, config: ServiceConfig) -> std::io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
        let pod = if network.config().virtual_loopback {
            Some(network.listen(addr, 1024)?)
        } else {
            None
        };
        let host = match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                Some(listener)
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && pod.is_some() => {
                tracing::warn!(%addr, error = %e, "service reachable inside its pod only");
                None
            }
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{addr}: {e}"))),
        };
        Ok(ServiceListeners { config, pod, host })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.config.port
    }
}

/// Stdout or stderr shared by every instance of a service.
#[derive(Clone)]
struct SharedOutput(Arc<dyn StdoutStream + Sync>);

impl IsTerminal for SharedOutput {
    fn is_terminal(&self) -> bool {
        self.0.is_terminal()
    }
}

impl StdoutStream for SharedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        self.0.p2_stream()
    }
}

/// What every request of one service needs.
struct Service {
    engine: Engine,
    pre: ProxyPre<StoreData>,
    invocation: Invocation,
    stdout: SharedOutput,
    stderr: SharedOutput,
    /// Instances running.
    slots: Arc<Semaphore>,
    /// [`ServiceLimits::header_timeout`].
    header_timeout: Duration,
    /// Requests running or waiting for a slot.
    admitted: Arc<Semaphore>,
    /// How many `admitted` has.
    admissions: u32,
    /// Cancelled by a hard stop: every request's instance is dropped.
    stop: CancellationToken,
}

impl Engine {
    /// Serves `image`, a `wasi:http` service, on `listeners` until `terminate` (then drains the
    /// requests in flight and exits 0) or `stop` (at once: 137).
    pub async fn serve(
        &self,
        image: &Image,
        invocation: Invocation,
        listeners: ServiceListeners,
        io: GuestIo,
        stop: CancellationToken,
        terminate: CancellationToken,
    ) -> ExitStatus {
        let Image::Service(pre) = image else {
            return ExitStatus::start_error(
                "not a wasi:http service: it exports no `wasi:http/incoming-handler`".to_owned(),
            );
        };
        let limits = listeners.config.limits;
        let admissions =
            u32::try_from((limits.max_concurrency.max(1)).saturating_add(limits.max_queued))
                .unwrap_or(u32::MAX >> 3);
        let service = Arc::new(Service {
            engine: self.clone(),
            pre: pre.clone(),
            invocation,
            stdout: SharedOutput(Arc::from(io.stdout)),
            stderr: SharedOutput(Arc::from(io.stderr)),
            slots: Arc::new(Semaphore::new(limits.max_concurrency.max(1))),
            header_timeout: limits.header_timeout,
            admitted: Arc::new(Semaphore::new(admissions as usize)),
            admissions,
            stop: stop.clone(),
        });
        // One instance up front: a service that cannot be instantiated fails to start, not
        // on its first request.
        if let Err(e) = service.instantiate_once().await {
            return ExitStatus::start_error(one_line(&e));
        }
        let host = match listeners.host.map(tokio::net::TcpListener::from_std) {
            None => None,
            Some(Ok(listener)) => Some(listener),
            Some(Err(e)) => return ExitStatus::start_error(format!("listen: {e}")),
        };
        let pod = listeners.pod;
        tracing::debug!(port = listeners.config.port, "wasi:http service listening");

        let graceful = GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let room = connections.len() < limits.max_connections.max(1);
            let failed = tokio::select! {
                biased;
                () = stop.cancelled() => return ExitStatus::killed("stopped by wasmpod"),
                () = terminate.cancelled() => break,
                // Finished connections are reaped as they end.
                Some(_) = connections.join_next(), if !connections.is_empty() => None,
                accepted = accept_pod(pod.as_ref()), if room => match accepted {
                    Ok(stream) => {
                        serve_connection(&service, &graceful, &mut connections, stream);
                        None
                    }
                    Err(e) => Some(e),
                },
                accepted = accept_host(host.as_ref()), if room => match accepted {
                    Ok(stream) => {
                        serve_connection(&service, &graceful, &mut connections, stream);
                        None
                    }
                    Err(e) => Some(e),
                },
            };
            if let Some(e) = failed {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
        // Stop accepting: the port is free again, new connections are refused.
        drop((pod, host));
        tracing::debug!(connections = graceful.count(), "wasi:http service draining");
        tokio::select! {
            biased;
            () = stop.cancelled() => ExitStatus::killed("stopped by wasmpod"),
            () = async {
                graceful.shutdown().await;
                while connections.join_next().await.is_some() {}
                // Requests still writing their bodies end before the container does.
                let _drained = service.admitted.acquire_many(service.admissions).await;
            } => ExitStatus::exited(0),
        }
    }
}

async fn accept_pod(listener: Option<&PodListener>) -> std::io::Result<crate::net::PodStream> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_host(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<tokio::net::TcpStream> {
    match listener {
        Some(listener) => {
            let (stream, _) = listener.accept().await?;
            // hyper may write a response's head and body apart: without NODELAY the body
            // waits for the client's delayed ACK (40 ms), as wasmtime serve notes too.
            stream.set_nodelay(true)?;
            Ok(stream)
        }
        None => std::future::pending().await,
    }
}

/// Serves HTTP/1.1 with keep-alive on one connection, as a task of `connections`.
fn serve_connection<S>(
    service: &Arc<Service>,
    graceful: &GracefulShutdown,
    connections: &mut tokio::task::JoinSet<()>,
    stream: S,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let header_timeout = service.header_timeout;
    let service = service.clone();
    let handler = hyper::service::service_fn(move |request| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.handle(request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), handler);
    let connection = graceful.watch(connection);
    connections.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "http connection ended with an error");
        }
    });
}

/// A response of the runtime's own, not the guest's.
fn plain(status: u16, text: &str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(format!("{text}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

impl Service {
    /// A store for one instance: the container's invocation with its current limits (an
    /// in-place resize applies to the next request).
    fn store(&self) -> wasmtime::Result<wasmtime::Store<StoreData>> {
        let mut invocation = self.invocation.clone();
        let usage = &invocation.usage;
        if usage.memory_limit() > 0 {
            invocation.memory_limit = Some(usage.memory_limit());
        }
        invocation.cpu_limit_millis = usage.cpu_limit().or(invocation.cpu_limit_millis);
        let io = GuestIo {
            stdout: Box::new(self.stdout.clone()),
            stderr: Box::new(self.stderr.clone()),
        };
        self.engine.new_store(invocation, None, io)
    }

    async fn instantiate_once(&self) -> wasmtime::Result<()> {
        let mut store = self.store()?;
        self.pre.instantiate_async(&mut store).await.map(drop)
    }

    /// Answers one request: `503` when every slot is taken, else the guest's response, or
    /// `500` when its instance failed before giving one.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            return plain(503, "service busy: too many requests in flight");
        };
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return plain(503, "service closed");
        };
        let (respond, response) = oneshot::channel();
        let this = self.clone();
        let instance = tokio::spawn(self.stop.clone().run_until_cancelled_owned(async move {
            this.call(request, respond, (admitted, slot)).await
        }));
        match response.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => plain(500, &format!("the service failed the request: {code:?}")),
            Err(_) => {
                let failure = match instance.await {
                    Ok(Some(Err(e))) => one_line_failure(&e),
                    Ok(Some(Ok(()))) => "the service returned without a response".to_owned(),
                    Ok(None) => "the service was stopped".to_owned(),
                    Err(e) => format!("the request's task failed: {e}"),
                };
                self.report(&failure);
                plain(500, &failure)
            }
        }
    }

    /// Runs the guest's `handle` in a fresh instance; the slot is held until it returns (its
    /// response body written).
    async fn call(
        &self,
        request: hyper::Request<Incoming>,
        respond: oneshot::Sender<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
        _slot: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) -> wasmtime::Result<()> {
        let usage = self.invocation.usage.clone();
        let mut store = self.store()?;
        let data = store.data_mut();
        let request = data.http().new_incoming_request(Scheme::Http, request)?;
        let out = data.http().new_response_outparam(respond)?;
        let mut call = std::pin::pin!(async {
            let proxy = self.pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
        });
        // The instance's CPU time is the container's.
        std::future::poll_fn(|cx| {
            let started = usage.poll_begins();
            let polled = call.as_mut().poll(cx);
            usage.poll_ends(started);
            polled
        })
        .await
    }

    /// Writes a failed request's error to the container's stderr (its log).
    fn report(&self, failure: &str) {
        use tokio::io::AsyncWriteExt as _;
        let line = format!("wasmpod: request failed: {failure}\n");
        let mut stderr = Box::into_pin(self.stderr.async_stream());
        tokio::spawn(async move {
            let _ = stderr.write_all(line.as_bytes()).await;
            let _ = stderr.flush().await;
        });
    }
}

/// A failed instance's error, as the container's status would give it.
fn one_line_failure(e: &wasmtime::Error) -> String {
    match e
        .chain()
        .find_map(|cause| cause.downcast_ref::<super::OutOfMemory>())
    {
        Some(oom) => oom.to_string(),
        None => classify(e).message.unwrap_or_else(|| one_line(e)),
    }
}
