//! `wasi:http` services as containers: served per request on the container's port, over the
//! pod's loopback and a real socket; limits, failures and termination per request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use wasmpod::engine::ServiceLimits;
use wasmpod::logs::read_lines;
use wasmpod::net::{NetworkConfig, NetworkPolicy};
use wasmpod::spec::ContainerSpec;
use wasmpod::{
    ContainerConfig, ContainerState, Engine, EngineConfig, ExitReason, Sandbox, SandboxConfig,
};
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(30);

fn engine() -> Engine {
    Engine::new(EngineConfig {
        cache_dir: None,
        ..EngineConfig::default()
    })
    .expect("engine")
}

/// A pod serving `http-service` on `port`, with a memory limit per instance if given.
struct Served {
    _dir: tempfile::TempDir,
    sandbox: Sandbox,
    port: u16,
}

async fn serve(
    port: u16,
    limits: ServiceLimits,
    memory_limit: Option<u64>,
    network: NetworkConfig,
) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SandboxConfig {
        services: limits,
        network,
        ..SandboxConfig::new("web-pod", dir.path().to_owned())
    };
    let sandbox = Sandbox::create(&engine(), config).await.expect("sandbox");
    let mut spec = ContainerSpec::new("web", guests::HTTP_SERVICE_P2);
    spec.ports = vec![port];
    spec.env.push(("GREETING".to_owned(), "hi".to_owned()));
    spec.resources.memory_limit = memory_limit;
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await
        .expect("create");
    sandbox.start_container("web").expect("start");
    Served {
        _dir: dir,
        sandbox,
        port,
    }
}

impl Served {
    /// A connection over the pod's loopback, as a sibling container's.
    async fn pod_connection(&self) -> wasmpod::net::PodStream {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        self.sandbox.network().connect(addr).await.expect("connect")
    }

    /// One request on a fresh pod-loopback connection.
    async fn get(&self, path: &str) -> (u16, String) {
        let mut client = Client::over(self.pod_connection().await).await;
        client.send("GET", path, Bytes::new()).await
    }

    fn log(&self) -> Vec<String> {
        let status = self.sandbox.container_status("web").expect("status");
        read_lines(status.log_path.as_deref().expect("a log file"))
            .expect("log file")
            .into_iter()
            .map(|(_, line)| line)
            .collect()
    }

    /// Waits until the service's log has a line equal to `line`.
    async fn wait_for_log(&self, line: &str) {
        let waited = tokio::time::timeout(DEADLINE, async {
            while !self.log().iter().any(|l| l == line) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "no {line:?} in {:?}", self.log());
    }

    fn state(&self) -> ContainerState {
        self.sandbox.container_status("web").expect("status").state
    }
}

/// An HTTP/1.1 client on one keep-alive connection.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    async fn over<S>(stream: S) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Client { sender }
    }

    async fn send(&mut self, method: &str, path: &str, body: Bytes) -> (u16, String) {
        let (status, body) = self.send_bytes(method, path, body).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn send_bytes(&mut self, method: &str, path: &str, body: Bytes) -> (u16, Bytes) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "web")
            .body(Full::new(body))
            .expect("request");
        let sender = &mut self.sender;
        let sent = async move {
            sender.ready().await?;
            sender.send_request(request).await
        };
        let response = tokio::time::timeout(DEADLINE, sent)
            .await
            .expect("answered before the deadline")
            .expect("response");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("body");
        (status, body.to_bytes())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_over_the_pod_loopback_and_its_real_socket_with_keep_alive() {
    let served = serve(
        18481,
        ServiceLimits::default(),
        None,
        NetworkConfig::default(),
    )
    .await;
    assert_eq!(served.state(), ContainerState::Running);
    assert_eq!(
        served.sandbox.network().listening(),
        vec!["0.0.0.0:18481".parse().expect("addr")]
    );

    // Over the pod's loopback, two requests on one connection.
    let mut client = Client::over(served.pod_connection().await).await;
    let (status, body) = client.send("GET", "/", Bytes::new()).await;
    assert_eq!((status, body.as_str()), (200, "hello from wasi:http\n"));
    let (status, body) = client.send("GET", "/env?name=GREETING", Bytes::new()).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hi\n"),
        "the container's env"
    );

    // Over the real socket, a 1 MiB body both ways.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", served.port))
        .await
        .expect("connect to the real socket");
    let mut client = Client::over(tcp).await;
    let sent: Bytes = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let (status, echoed) = client.send_bytes("POST", "/echo", sent.clone()).await;
    assert_eq!(status, 200);
    assert!(
        echoed == sent,
        "echoed {} bytes of {}",
        echoed.len(),
        sent.len()
    );
    let (status, _) = client.send("GET", "/log-stderr", Bytes::new()).await;
    assert_eq!(status, 200);

    // Each request's stdout and stderr are the container's log.
    served.wait_for_log("POST /echo").await;
    served.wait_for_log("to stderr").await;
    assert!(served.log().iter().any(|l| l == "GET /env?name=GREETING"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_are_all_answered() {
    let served = std::sync::Arc::new(
        serve(
            18482,
            ServiceLimits::default(),
            None,
            NetworkConfig::default(),
        )
        .await,
    );
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..200 {
        let served = served.clone();
        requests.spawn(async move { served.get(&format!("/slow?ms={}", i % 20)).await });
    }
    let mut ok = 0;
    while let Some(answer) = requests.join_next().await {
        let (status, body) = answer.expect("join");
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("slept "), "{body}");
        ok += 1;
    }
    assert_eq!(ok, 200);
    assert_eq!(served.state(), ContainerState::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_traps_is_a_500_and_its_neighbours_are_answered() {
    let served = std::sync::Arc::new(
        serve(
            18483,
            ServiceLimits::default(),
            None,
            NetworkConfig::default(),
        )
        .await,
    );
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..21 {
        let served = served.clone();
        let path = if i == 10 { "/trap" } else { "/slow?ms=5" };
        requests.spawn(async move { (path, served.get(path).await) });
    }
    while let Some(answer) = requests.join_next().await {
        let (path, (status, body)) = answer.expect("join");
        let expected = if path == "/trap" { 500 } else { 200 };
        assert_eq!(status, expected, "{path}: {body}");
    }
    let (status, _) = served.get("/").await;
    assert_eq!(status, 200, "the service serves on after a trap");
    assert_eq!(served.state(), ContainerState::Running);
    let log = served.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("wasmpod: request failed:") && l.contains("unreachable")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_cap_requests_are_answered_503() {
    let limits = ServiceLimits {
        max_concurrency: 1,
        max_queued: 0,
        ..ServiceLimits::default()
    };
    let served = std::sync::Arc::new(serve(18484, limits, None, NetworkConfig::default()).await);
    let slow = {
        let served = served.clone();
        tokio::spawn(async move { served.get("/slow?ms=1500").await })
    };
    served.wait_for_log("GET /slow?ms=1500").await;
    let (status, body) = served.get("/").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = slow.await.expect("join");
    assert_eq!((status, body.as_str()), (200, "slept 1500 ms\n"));
    let (status, _) = served.get("/").await;
    assert_eq!(status, 200, "the slot is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_past_its_memory_limit_fails_only_its_request() {
    let served = serve(
        18485,
        ServiceLimits::default(),
        Some(64 << 20),
        NetworkConfig::default(),
    )
    .await;
    let (status, body) = served.get("/alloc?mb=128").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("memory limit"), "{body}");
    let (status, body) = served.get("/alloc?mb=16").await;
    assert_eq!((status, body.as_str()), (200, "allocated 16 MiB\n"));
    assert_eq!(served.state(), ContainerState::Running);
    let usage = served
        .sandbox
        .container_status("web")
        .expect("status")
        .usage;
    assert_eq!(
        usage.memory(),
        0,
        "finished instances gave their memory back"
    );
    assert!(usage.memory_peak() >= 16 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_answers_the_request_in_flight_then_exits_0() {
    let served = std::sync::Arc::new(
        serve(
            18486,
            ServiceLimits::default(),
            None,
            NetworkConfig::default(),
        )
        .await,
    );
    let slow = {
        let served = served.clone();
        tokio::spawn(async move { served.get("/slow?ms=1000").await })
    };
    served.wait_for_log("GET /slow?ms=1000").await;
    let exit = tokio::time::timeout(
        DEADLINE,
        served
            .sandbox
            .stop_container("web", Duration::from_secs(20)),
    )
    .await
    .expect("stopped before the deadline")
    .expect("stop")
    .expect("it ran");
    assert_eq!((exit.code, exit.reason), (0, ExitReason::Completed));
    let (status, body) = slow.await.expect("join");
    assert_eq!((status, body.as_str()), (200, "slept 1000 ms\n"));
    assert!(
        served.sandbox.network().listening().is_empty(),
        "the port is released"
    );
    let refused = served
        .sandbox
        .network()
        .connect(([127, 0, 0, 1], served.port).into())
        .await;
    assert!(refused.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_stop_ends_a_service_with_requests_in_flight() {
    let served = std::sync::Arc::new(
        serve(
            18487,
            ServiceLimits::default(),
            None,
            NetworkConfig::default(),
        )
        .await,
    );
    let _slow = {
        let served = served.clone();
        tokio::spawn(async move { served.get("/slow?ms=60000").await })
    };
    served.wait_for_log("GET /slow?ms=60000").await;
    let exit = tokio::time::timeout(
        DEADLINE,
        served
            .sandbox
            .stop_container("web", Duration::from_millis(100)),
    )
    .await
    .expect("stopped before the deadline")
    .expect("stop")
    .expect("it ran");
    assert_eq!(exit.code, 137, "{exit:?}");
}

/// A sibling container's HTTP client (a `wasi:cli` command importing
/// `wasi:http/outgoing-handler`) and the service's own outgoing request reach the service
/// over the pod's loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siblings_reach_the_service_over_127_0_0_1_with_wasi_http_clients() {
    let served = serve(
        18488,
        ServiceLimits::default(),
        None,
        NetworkConfig {
            policy: NetworkPolicy::PodOnly,
            ..NetworkConfig::default()
        },
    )
    .await;
    let mut fetch = ContainerSpec::new("fetch", guests::HTTP_FETCH_P2);
    fetch.argv.extend(
        [
            "-X",
            "POST",
            "-d",
            "from a sibling",
            "http://127.0.0.1:18488/echo",
        ]
        .map(String::from),
    );
    let mut denied = ContainerSpec::new("denied", guests::HTTP_FETCH_P2);
    denied.argv.push("http://192.0.2.1/".to_owned());
    for spec in [fetch, denied] {
        let name = spec.name.clone();
        served
            .sandbox
            .create_container(ContainerConfig::new(spec, 0))
            .await
            .expect("create");
        served.sandbox.start_container(&name).expect("start");
    }
    let fetched = tokio::time::timeout(DEADLINE, served.sandbox.wait_container("fetch"))
        .await
        .expect("ended")
        .expect("wait");
    let status = served.sandbox.container_status("fetch").expect("status");
    let out: Vec<String> = read_lines(status.log_path.as_deref().expect("log"))
        .expect("log")
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert_eq!(fetched.code, 0, "{fetched:?} {out:?}");
    assert!(out.iter().any(|l| l == "from a sibling"), "{out:?}");

    let denied = tokio::time::timeout(DEADLINE, served.sandbox.wait_container("denied"))
        .await
        .expect("ended")
        .expect("wait");
    let status = served.sandbox.container_status("denied").expect("status");
    let said = read_lines(status.log_path.as_deref().expect("log")).expect("log");
    assert_eq!(denied.code, 1, "the pod-only policy keeps it in: {said:?}");
    assert!(
        said.iter()
            .any(|(_, line)| line.contains("HttpRequestDenied")),
        "{said:?}"
    );

    let (status, body) = served
        .get("/fetch?url=http://localhost:18488/env%3Fname%3DGREETING")
        .await;
    assert_eq!((status, body.as_str()), (200, "upstream 200: hi\n"));
}

/// The harness: a test sends requests to a pod's service while it runs, then reads the pod's
/// final status and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_sends_requests_to_a_running_pod_and_terminates_it() {
    use wasmpod::harness::{Container, PodBuilder};
    let run = PodBuilder::new("served")
        .container(
            Container::new("web", guests::HTTP_SERVICE_P2)
                .port(18489)
                .env("GREETING", "from the harness"),
        )
        .run_with(DEADLINE, |pod| async move {
            let request = http::Request::post("/echo").body(Bytes::from_static(b"ping"));
            let response = pod
                .request(18489, request.expect("request"))
                .await
                .expect("response");
            assert_eq!(response.status(), 200);
            assert_eq!(response.body(), "ping");
            let request = http::Request::get("/env?name=GREETING").body(Bytes::new());
            let response = pod
                .request(18489, request.expect("request"))
                .await
                .expect("response");
            assert_eq!(response.body(), "from the harness\n");
        })
        .await
        .expect("run");
    assert_eq!(run.phase(), wasmpod::status::Phase::Succeeded);
    assert_eq!(run.exit_code("web"), Some(0));
    assert_eq!(run.stdout("web"), "POST /echo\nGET /env?name=GREETING\n");
}

/// A handler that computes forever (a hostile service) is preempted at every epoch tick: the
/// other requests are answered meanwhile, and the grace period's end stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_handler_neither_starves_its_neighbours_nor_outlives_the_grace_period() {
    let served = std::sync::Arc::new(
        serve(
            18490,
            ServiceLimits::default(),
            None,
            NetworkConfig::default(),
        )
        .await,
    );
    let mut spinners = Vec::new();
    for _ in 0..4 {
        let served = served.clone();
        spinners.push(tokio::spawn(async move { served.get("/spin").await }));
    }
    let waited = tokio::time::timeout(DEADLINE, async {
        while served.log().iter().filter(|l| *l == "GET /spin").count() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{:?}", served.log());
    // More spinners than worker threads, and still every other request is answered.
    for _ in 0..20 {
        let (status, body) = served.get("/").await;
        assert_eq!((status, body.as_str()), (200, "hello from wasi:http\n"));
    }
    let usage = served
        .sandbox
        .container_status("web")
        .expect("status")
        .usage;
    assert!(
        usage.cpu_time() > Duration::ZERO,
        "the spinners' CPU is the container's"
    );
    let exit = tokio::time::timeout(
        DEADLINE,
        served
            .sandbox
            .stop_container("web", Duration::from_millis(200)),
    )
    .await
    .expect("stopped before the deadline")
    .expect("stop")
    .expect("it ran");
    assert_eq!(exit.code, 137, "{exit:?}");
    // A spinner's request ends unanswered (its connection dropped) or with the runtime's 500.
    for spinner in spinners {
        if let Ok((status, body)) = spinner.await {
            assert_eq!(status, 500, "{body}");
        }
    }
}

/// Hostile clients cannot hold the service: one that never finishes its request head is cut
/// off at the header timeout, and past the connection cap the next client waits until a
/// connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_excess_clients_do_not_hold_the_service() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let limits = ServiceLimits {
        max_connections: 2,
        header_timeout: Duration::from_millis(300),
        ..ServiceLimits::default()
    };
    let served = serve(18491, limits, None, NetworkConfig::default()).await;
    // Half a request head, then nothing: the service closes the connection.
    let mut slow = served.pod_connection().await;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: we")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a slow client is cut off");

    // Two idle connections take both places; the third is served once one goes away.
    let first = served.pod_connection().await;
    let second = served.pod_connection().await;
    let third = tokio::spawn({
        let network = served.sandbox.network().clone();
        async move {
            let stream = network
                .connect(([127, 0, 0, 1], 18491).into())
                .await
                .expect("connect");
            Client::over(stream)
                .await
                .send("GET", "/", Bytes::new())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!third.is_finished(), "served past the connection cap");
    drop(first);
    let (status, _) = tokio::time::timeout(DEADLINE, third)
        .await
        .expect("served once a place was free")
        .expect("join");
    assert_eq!(status, 200);
    drop(second);
}
