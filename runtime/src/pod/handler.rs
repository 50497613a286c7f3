//! Kubelet's handlers, which probes and lifecycle hooks run against a container: `exec` as
//! `kubectl exec` runs a command ([`Sandbox::exec`]), `httpGet`, `tcpSocket` and `grpc` on the
//! pod's loopback (`127.0.0.1:PORT`, where a guest's wildcard or loopback listener answers;
//! kubelet reaches the pod's IP), `sleep`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::{ExecConfig, Sandbox};
use crate::engine::GuestIo;
use crate::net::Network;
use crate::spec::{Handler, HttpGet};

/// How much of an exec check's output a failure message keeps (kubelet keeps 10 KiB).
const OUTPUT_LIMIT: usize = 10 * 1024;

/// kubelet's `User-Agent` for HTTP probes and hooks (`kube-probe/<major>.<minor>`).
const USER_AGENT: &str = "kube-probe/1.35";

impl Sandbox {
    /// Runs `handler` against running container `container`, as kubelet runs a probe's or a
    /// hook's: `Ok` when it passed, else why not, in one line (kubelet's event message). With
    /// `timeout`, one that takes longer failed.
    #[tracing::instrument(skip_all, fields(pod = %self.shared.config.name, container))]
    pub async fn run_handler(
        &self,
        container: &str,
        handler: &Handler,
        timeout: Option<Duration>,
    ) -> Result<(), String> {
        let run = self.run_handler_once(container, handler);
        let Some(timeout) = timeout else {
            return run.await;
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(match handler {
                Handler::Exec { argv } => format!(
                    "command {:?} timed out after {}s",
                    argv.join(" "),
                    timeout.as_secs()
                ),
                _ => format!("timed out after {}s", timeout.as_secs()),
            }),
        }
    }

    async fn run_handler_once(&self, container: &str, handler: &Handler) -> Result<(), String> {
        let network = self.network();
        match handler {
            Handler::Exec { argv } => exec(self, container, argv).await,
            Handler::TcpSocket { port } => {
                connect(network, *port).await?;
                Ok(())
            }
            Handler::HttpGet(get) => http_get(network, get).await,
            Handler::Grpc { port, service } => grpc(network, *port, service).await,
            Handler::Sleep(pause) => {
                tokio::time::sleep(*pause).await;
                Ok(())
            }
        }
    }
}

/// `exec`: the command's exit code 0 passes; its output is the failure's message.
async fn exec(sandbox: &Sandbox, container: &str, argv: &[String]) -> Result<(), String> {
    let output = MemoryOutputPipe::new(OUTPUT_LIMIT);
    let config = ExecConfig {
        argv: argv.to_vec(),
        stdin: None,
        io: GuestIo {
            stdout: Box::new(output.clone()),
            stderr: Box::new(output.clone()),
        },
        kill: CancellationToken::new(),
    };
    let exit = sandbox
        .exec(container, config)
        .await
        .map_err(|e| e.to_string())?;
    if exit.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.contents())
        .trim()
        .replace('\n', " ");
    Err(match said.is_empty() {
        true => format!("command {:?} exited with {}", argv.join(" "), exit.code),
        false => format!(
            "command {:?} exited with {}: {said}",
            argv.join(" "),
            exit.code
        ),
    })
}

async fn connect(network: &Network, port: u16) -> Result<crate::net::PodStream, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    network
        .connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: {e}"))
}

/// `httpGet`: a status from 200 to 399 passes (kubelet does not follow redirects to other
/// hosts either: a redirect is a pass).
async fn http_get(network: &Network, get: &HttpGet) -> Result<(), String> {
    let HttpGet {
        port,
        path,
        https,
        headers,
    } = get;
    let (port, https) = (*port, *https);
    let stream = connect(network, port).await?;
    let scheme = if https { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{port}{path}");
    let mut request = http::Request::get(path)
        .header(http::header::HOST, format!("127.0.0.1:{port}"))
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(http::header::ACCEPT, "*/*");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Bytes::new())
        .map_err(|e| format!("Get {url:?}: {e}"))?;
    let response = if https {
        let tls = insecure_tls(stream)
            .await
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        crate::net::http1_request(tls, request).await
    } else {
        crate::net::http1_request(stream, request).await
    }
    .map_err(|e| format!("Get {url:?}: {e}"))?;
    let status = response.status();
    if (200..400).contains(&status.as_u16()) {
        Ok(())
    } else {
        Err(format!(
            "HTTP probe failed with statuscode: {}",
            status.as_u16()
        ))
    }
}

/// TLS without verifying the server's certificate, as kubelet's HTTPS probes do.
async fn insecure_tls<S>(stream: S) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
}

/// Accepts any certificate (the handshake's signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `grpc`: the health checking protocol's `Check` of `service` answered `SERVING` passes.
async fn grpc(network: &Network, port: u16, service: &str) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let failed = |e: &dyn std::fmt::Display| {
        format!("failed to connect service {addr:?} within the probe's timeout: {e}")
    };
    let network = network.clone();
    let connector = tower::service_fn(move |_: http::Uri| {
        let network = network.clone();
        async move {
            let stream = network.connect(addr).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| failed(&e))?
        .user_agent(USER_AGENT)
        .map_err(|e| failed(&e))?
        .connect_with_connector(connector)
        .await
        .map_err(|e| failed(&e))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|status| {
            format!(
                "rpc error: code = {:?} desc = {}",
                status.code(),
                status.message()
            )
        })?;
    let status = response.into_inner().status();
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(format!(
            "service unhealthy (responded with {:?})",
            status.as_str_name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http_body_util::Full;
    use hyper_util::rt::TokioIo;
    use tokio::io::ReadBuf;

    use super::*;
    use crate::net::{NetworkConfig, PodListener, PodStream};

    fn pod_network() -> Network {
        Network::new(NetworkConfig::default())
    }

    fn get(port: u16, path: &str) -> HttpGet {
        HttpGet {
            port,
            path: path.to_owned(),
            https: false,
            headers: Vec::new(),
        }
    }

    fn listen(network: &Network, port: u16) -> PodListener {
        network
            .listen(SocketAddr::from(([0, 0, 0, 0], port)), 16)
            .expect("listen")
    }

    /// Answers every request on `listener` with the status its path names (`/404` → 404).
    fn serve_statuses(listener: PodListener) {
        tokio::spawn(async move {
            while let Ok(stream) = listener.accept().await {
                let service = hyper::service::service_fn(|request: http::Request<_>| async move {
                    let code = request
                        .uri()
                        .path()
                        .trim_start_matches('/')
                        .parse()
                        .unwrap_or(200);
                    http::Response::builder()
                        .status(code)
                        .header(
                            "x-agent",
                            request.headers()[http::header::USER_AGENT].clone(),
                        )
                        .body(Full::new(Bytes::new()))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
    }

    #[tokio::test]
    async fn http_get_passes_from_200_to_399() {
        let network = pod_network();
        serve_statuses(listen(&network, 8080));
        for (code, passes) in [
            (200, true),
            (204, true),
            (302, true),
            (399, true),
            (400, false),
            (500, false),
        ] {
            let checked = http_get(&network, &get(8080, &format!("/{code}"))).await;
            assert_eq!(checked.is_ok(), passes, "{code}: {checked:?}");
            if !passes {
                assert_eq!(
                    checked,
                    Err(format!("HTTP probe failed with statuscode: {code}"))
                );
            }
        }
        let refused = http_get(&network, &get(8081, "/")).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("dial tcp 127.0.0.1:8081")),
            "{refused:?}"
        );
    }

    /// A pod connection as tonic's server takes it.
    struct Conn(PodStream);

    impl tonic::transport::server::Connected for Conn {
        type ConnectInfo = ();
        fn connect_info(&self) {}
    }

    impl AsyncRead for Conn {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Conn {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn grpc_passes_while_the_health_service_says_serving() {
        let network = pod_network();
        let listener = listen(&network, 9090);
        let (reporter, service) = tonic_health::server::health_reporter();
        let incoming = futures_util::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(Conn);
            Some((accepted, listener))
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        assert_eq!(grpc(&network, 9090, "").await, Ok(()));
        reporter
            .set_service_status("ready", tonic_health::ServingStatus::NotServing)
            .await;
        assert_eq!(
            grpc(&network, 9090, "ready").await,
            Err("service unhealthy (responded with \"NOT_SERVING\")".to_owned())
        );
        let unknown = grpc(&network, 9090, "other").await;
        assert!(
            unknown.as_ref().is_err_and(|e| e.contains("NotFound")),
            "{unknown:?}"
        );
        let refused = grpc(&network, 9091, "").await;
        assert!(refused.is_err(), "{refused:?}");
    }
}
