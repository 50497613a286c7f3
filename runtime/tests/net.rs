//! The pod's virtual network with real wasip2 guests: loopback between containers, ports,
//! isolation between pods, failures, wildcard listeners, flow control and policy.

use std::io::{Read as _, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use wasmpod::logs::LogStream;
use wasmpod::net::{NetworkConfig, NetworkPolicy};
use wasmpod::spec::ContainerSpec;
use wasmpod::{ContainerConfig, Engine, EngineConfig, ExitStatus, Sandbox, SandboxConfig};
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

/// One engine for every test: each guest is compiled once per run.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            cache_dir: None,
            ..EngineConfig::default()
        })
        .expect("engine")
    })
}

/// A sandbox whose guests' stdout lines arrive on a channel.
struct Pod {
    sandbox: Sandbox,
    lines: mpsc::UnboundedReceiver<(String, String)>,
    seen: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Pod {
    async fn new(name: &str, network: NetworkConfig) -> Pod {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, lines) = mpsc::unbounded_channel();
        let config = SandboxConfig {
            log_observer: Some(Arc::new(move |container, stream, line, _partial| {
                if stream == LogStream::Stdout {
                    let _ = tx.send((container.to_owned(), line.to_owned()));
                }
            })),
            network,
            ..SandboxConfig::new(name, dir.path().to_owned())
        };
        let sandbox = Sandbox::create(engine(), config).await.expect("sandbox");
        Pod {
            sandbox,
            lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    async fn start(&self, name: &str, module: &str, args: &[&str]) {
        let mut spec = ContainerSpec::new(name, module);
        spec.argv.extend(args.iter().map(|a| a.to_string()));
        self.sandbox
            .create_container(ContainerConfig::new(spec, 0))
            .await
            .expect("create");
        self.sandbox.start_container(name).expect("start");
    }

    async fn wait(&self, name: &str) -> ExitStatus {
        tokio::time::timeout(DEADLINE, self.sandbox.wait_container(name))
            .await
            .unwrap_or_else(|_| panic!("{name} did not end before the deadline"))
            .expect("wait")
    }

    async fn run(&mut self, name: &str, module: &str, args: &[&str]) -> (ExitStatus, Vec<String>) {
        self.start(name, module, args).await;
        let exit = self.wait(name).await;
        (exit, self.output(name).await)
    }

    /// The first stdout line of `container` starting with `prefix`, waiting for it.
    async fn line(&mut self, container: &str, prefix: &str) -> String {
        let matches = |(c, l): &(String, String)| c == container && l.starts_with(prefix);
        if let Some((_, line)) = self.seen.iter().find(|e| matches(e)) {
            return line.clone();
        }
        let wait = async {
            while let Some(entry) = self.lines.recv().await {
                let found = matches(&entry);
                self.seen.push(entry.clone());
                if found {
                    return entry.1;
                }
            }
            panic!("log channel closed");
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("{container} never printed {prefix:?}: {:?}", self.seen))
    }

    /// Every stdout line `container` printed so far (call after it exited).
    async fn output(&mut self, container: &str) -> Vec<String> {
        while let Ok(entry) = self.lines.try_recv() {
            self.seen.push(entry);
        }
        self.seen
            .iter()
            .filter(|(c, _)| c == container)
            .map(|(_, l)| l.clone())
            .collect()
    }

    async fn delete(self) {
        self.sandbox.delete().await.expect("delete");
    }
}

/// The `bulk` guest's pattern: xorshift64 words, little endian.
fn pattern_checksum(bytes: u64, seed: u64) -> String {
    let mut state = seed;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut left = bytes;
    while left > 0 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word = state.to_le_bytes();
        let n = left.min(8) as usize;
        for &b in &word[..n] {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        left -= n as u64;
    }
    format!("{hash:016x}")
}

/// A port nothing on the host listens on right now.
fn free_host_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_fetches_the_servers_page_over_loopback() {
    let mut pod = Pod::new("web", NetworkConfig::default()).await;
    pod.start(
        "server",
        guests::HTTP_SERVER_P2,
        &["127.0.0.1:80", "--requests", "1"],
    )
    .await;
    pod.line("server", "listening on 127.0.0.1:80").await;
    let (exit, body) = pod
        .run("sidecar", guests::HTTP_GET_P2, &["http://127.0.0.1:80/"])
        .await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        body.iter().any(|l| l.contains("Welcome to wasmpod!")),
        "{body:?}"
    );
    assert!(pod.wait("server").await.success());
    let served = pod.line("server", "served").await;
    assert!(served.starts_with("served GET / to 127.0.0.1:"), "{served}");
    assert_eq!(pod.sandbox.network().stats().connections, 1);
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_cross_intact_both_ways() {
    let mut pod = Pod::new("bulk", NetworkConfig::default()).await;
    let size = (64 * MIB).to_string();
    pod.start(
        "server",
        guests::BULK_P2,
        &["server", "127.0.0.1:9000", "--reply", &size],
    )
    .await;
    pod.line("server", "listening on").await;
    let (exit, client) = pod
        .run(
            "client",
            guests::BULK_P2,
            &["client", "127.0.0.1:9000", &size],
        )
        .await;
    assert!(exit.success(), "{exit:?} {client:?}");
    let expected_up = format!(
        "received {} bytes checksum {}",
        64 * MIB,
        pattern_checksum(64 * MIB, 1)
    );
    let expected_down = format!(
        "received {} bytes checksum {}",
        64 * MIB,
        pattern_checksum(64 * MIB, 2)
    );
    assert!(client.contains(&expected_down), "{client:?}");
    assert!(pod.wait("server").await.success());
    assert_eq!(pod.line("server", "received").await, expected_up);
    let stats = pod.sandbox.network().stats();
    assert!(
        stats.peak_buffered_bytes <= NetworkConfig::default().buffer_size,
        "{stats:?}"
    );
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_is_in_use_for_the_whole_pod_until_its_holder_exits() {
    let mut pod = Pod::new("ports", NetworkConfig::default()).await;
    pod.start("holder", guests::TCP_P2, &["listen", "127.0.0.1:7000"])
        .await;
    pod.line("holder", "listening on 127.0.0.1:7000").await;
    for (name, addr) in [("same", "127.0.0.1:7000"), ("wildcard", "0.0.0.0:7000")] {
        let (exit, out) = pod.run(name, guests::TCP_P2, &["bind", addr]).await;
        assert!(!exit.success(), "{name}: {out:?}");
        assert!(
            out[0].starts_with(&format!("bind {addr}: AddrInUse")),
            "{out:?}"
        );
    }
    // Port 0 takes an ephemeral port, in the pod and (for a wildcard) on the host.
    let (exit, out) = pod
        .run("ephemeral", guests::TCP_P2, &["bind", "0.0.0.0:0"])
        .await;
    assert!(exit.success(), "{out:?}");
    assert!(out[0].starts_with("bound 0.0.0.0:"), "{out:?}");
    // Another loopback address is another address.
    let (exit, out) = pod
        .run("other", guests::TCP_P2, &["bind", "127.0.0.2:7000"])
        .await;
    assert!(exit.success(), "{out:?}");
    let (exit, out) = pod
        .run("client", guests::TCP_P2, &["connect", "127.0.0.1:7000"])
        .await;
    assert!(exit.success(), "{out:?}");
    assert_eq!(out, ["received: hello"]);
    assert!(pod.wait("holder").await.success());
    let (exit, out) = pod
        .run("after", guests::TCP_P2, &["bind", "127.0.0.1:7000"])
        .await;
    assert!(exit.success(), "{out:?}");
    assert_eq!(out, ["bound 127.0.0.1:7000"]);
    assert_eq!(pod.sandbox.network().stats().bound_addresses, 0);
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_in_one_process_bind_the_same_port_unaware_of_each_other() {
    let mut pods = Vec::new();
    for name in ["left", "right"] {
        let mut pod = Pod::new(name, NetworkConfig::default()).await;
        pod.start(
            "server",
            guests::TCP_P2,
            &["listen", "127.0.0.1:7000", "--greet", name],
        )
        .await;
        pod.line("server", "listening on 127.0.0.1:7000").await;
        pods.push((name, pod));
    }
    for (name, pod) in &mut pods {
        let (exit, out) = pod
            .run("client", guests::TCP_P2, &["connect", "127.0.0.1:7000"])
            .await;
        assert!(exit.success(), "{out:?}");
        assert_eq!(out, [format!("received: {name}")]);
        assert!(pod.wait("server").await.success());
        assert_eq!(pod.sandbox.network().stats().connections, 1);
    }
    for (_, pod) in pods {
        pod.delete().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_port_nobody_listens_on_is_refused() {
    let mut pod = Pod::new("refused", NetworkConfig::default()).await;
    let (exit, out) = pod
        .run("client", guests::TCP_P2, &["connect", "127.0.0.1:7001"])
        .await;
    assert!(!exit.success());
    assert!(
        out[0].starts_with("connect 127.0.0.1:7001: ConnectionRefused"),
        "{out:?}"
    );
    // The IPv6 loopback is the pod's too.
    let (exit, out) = pod
        .run("v6", guests::TCP_P2, &["connect", "[::1]:7001"])
        .await;
    assert!(!exit.success());
    assert!(
        out[0].starts_with("connect [::1]:7001: ConnectionRefused"),
        "{out:?}"
    );
    pod.start("v6-server", guests::TCP_P2, &["listen", "[::1]:7001"])
        .await;
    pod.line("v6-server", "listening on [::1]:7001").await;
    let (exit, out) = pod
        .run("v6-again", guests::TCP_P2, &["connect", "[::1]:7001"])
        .await;
    assert!(exit.success(), "{out:?}");
    assert_eq!(out, ["received: hello"]);
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_trapping_mid_stream_ends_the_stream_instead_of_hanging() {
    let mut pod = Pod::new("trap", NetworkConfig::default()).await;
    let size = (64 * MIB).to_string();
    let after = MIB.to_string();

    // The writer traps: the reader sees the end of the stream early.
    pod.start("reader", guests::BULK_P2, &["server", "127.0.0.1:9001"])
        .await;
    pod.line("reader", "listening on").await;
    let (exit, _) = pod
        .run(
            "writer",
            guests::BULK_P2,
            &["client", "127.0.0.1:9001", &size, "--trap-after", &after],
        )
        .await;
    assert_eq!(exit.code, wasmpod::engine::EXIT_TRAP, "{exit:?}");
    pod.wait("reader").await;
    let end = pod.line("reader", "re").await;
    let received: u64 = end
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a byte count");
    assert!((MIB..64 * MIB).contains(&received), "{end}");

    // The reader traps with bytes unread: the writer's next write fails.
    pod.start(
        "reader2",
        guests::BULK_P2,
        &["server", "127.0.0.1:9002", "--trap-after", &after],
    )
    .await;
    pod.line("reader2", "listening on").await;
    let (exit, out) = pod
        .run(
            "writer2",
            guests::BULK_P2,
            &["client", "127.0.0.1:9002", &size],
        )
        .await;
    assert!(!exit.success());
    assert!(
        out.iter().any(|l| l.starts_with("write failed after")),
        "{out:?}"
    );
    assert_eq!(pod.wait("reader2").await.code, wasmpod::engine::EXIT_TRAP);
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_listener_answers_the_pod_and_the_host() {
    let mut pod = Pod::new("wildcard", NetworkConfig::default()).await;
    let port = free_host_port();
    let addr = format!("0.0.0.0:{port}");
    pod.start(
        "server",
        guests::HTTP_SERVER_P2,
        &[&addr, "--requests", "2", "--body", "from the wildcard"],
    )
    .await;
    pod.line("server", "listening on").await;

    let url = format!("http://127.0.0.1:{port}/");
    let (exit, body) = pod.run("sidecar", guests::HTTP_GET_P2, &[&url]).await;
    assert!(exit.success(), "{exit:?}");
    assert_eq!(body, ["from the wildcard"]);

    let native = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(DEADLINE))?;
        stream.write_all(b"GET /native HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    });
    let response = native.await.expect("join").expect("native client");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("from the wildcard"), "{response}");

    assert!(pod.wait("server").await.success());
    let stats = pod.sandbox.network().stats();
    assert_eq!((stats.connections, stats.host_accepts), (1, 1), "{stats:?}");
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_the_writer_to_the_buffer_size() {
    let buffer = 64 << 10;
    let mut pod = Pod::new(
        "slow",
        NetworkConfig {
            buffer_size: buffer,
            ..NetworkConfig::default()
        },
    )
    .await;
    let size = 8 * MIB;
    pod.start(
        "reader",
        guests::BULK_P2,
        &[
            "server",
            "127.0.0.1:9003",
            "--read-chunk",
            "16384",
            "--read-delay-ms",
            "1",
        ],
    )
    .await;
    pod.line("reader", "listening on").await;
    let (exit, out) = pod
        .run(
            "writer",
            guests::BULK_P2,
            &["client", "127.0.0.1:9003", &size.to_string()],
        )
        .await;
    assert!(exit.success(), "{out:?}");
    assert!(pod.wait("reader").await.success());
    assert_eq!(
        pod.line("reader", "received").await,
        format!(
            "received {size} bytes checksum {}",
            pattern_checksum(size, 1)
        )
    );
    let peak = pod.sandbox.network().stats().peak_buffered_bytes;
    // The writer filled the pipe (it was held back), and never beyond it.
    assert_eq!(peak, buffer, "peak {peak} bytes buffered");
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_cap_is_a_clean_error() {
    let mut pod = Pod::new(
        "cap",
        NetworkConfig {
            max_sockets: 16,
            ..NetworkConfig::default()
        },
    )
    .await;
    let (exit, out) = pod.run("greedy", guests::TCP_P2, &["exhaust"]).await;
    assert!(exit.success(), "{exit:?}");
    assert!(out[0].starts_with("opened 16 sockets, then: "), "{out:?}");
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_only_keeps_guests_in_the_pod() {
    let mut pod = Pod::new(
        "closed",
        NetworkConfig {
            policy: NetworkPolicy::PodOnly,
            ..NetworkConfig::default()
        },
    )
    .await;
    // 192.0.2.0/24 is reserved for documentation: never routed, and refused before any packet.
    let (exit, out) = pod
        .run("out", guests::TCP_P2, &["connect", "192.0.2.1:80"])
        .await;
    assert!(!exit.success());
    assert!(
        out[0].starts_with("connect 192.0.2.1:80: PermissionDenied"),
        "{out:?}"
    );
    let (exit, _) = pod
        .run(
            "lookup",
            guests::HTTP_GET_P2,
            &["http://example.com/", "--wait-ms", "0"],
        )
        .await;
    assert!(!exit.success());
    pod.start("server", guests::TCP_P2, &["listen", "127.0.0.1:7000"])
        .await;
    pod.line("server", "listening on").await;
    let (exit, out) = pod
        .run("in", guests::TCP_P2, &["connect", "127.0.0.1:7000"])
        .await;
    assert!(exit.success(), "{out:?}");
    // `localhost` is the pod itself: it resolves without a resolver, under this policy too.
    pod.start("named", guests::TCP_P2, &["listen", "127.0.0.1:7001"])
        .await;
    pod.line("named", "listening on").await;
    let (exit, out) = pod
        .run("by-name", guests::TCP_P2, &["connect", "localhost:7001"])
        .await;
    assert!(exit.success(), "{out:?}");
    let (exit, out) = pod
        .run("elsewhere", guests::TCP_P2, &["connect", "example.com:80"])
        .await;
    assert!(!exit.success(), "{out:?}");
    assert!(out[0].starts_with("connect example.com:80: "), "{out:?}");
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_virtual_loopback_guests_use_the_hosts() {
    let mut pod = Pod::new(
        "kernel",
        NetworkConfig {
            virtual_loopback: false,
            ..NetworkConfig::default()
        },
    )
    .await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let native = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.write_all(b"from the host")
    });
    let (exit, out) = pod.run("client", guests::TCP_P2, &["connect", &addr]).await;
    assert!(exit.success(), "{out:?}");
    assert_eq!(out, ["received: from the host"]);
    native.join().expect("join").expect("native server");

    // A guest waiting in `accept` on a host socket sleeps: it is woken by the connection, it
    // does not spin (wasi-libc waits on the pollable it took when the socket was created).
    let port = free_host_port();
    let addr = format!("127.0.0.1:{port}");
    pod.start(
        "server",
        guests::TCP_P2,
        &["listen", &addr, "--greet", "to the host"],
    )
    .await;
    pod.line("server", "listening on").await;
    let idle = Duration::from_millis(300);
    let native = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        std::thread::sleep(idle);
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(DEADLINE))?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    });
    assert_eq!(
        native.await.expect("join").expect("native client"),
        "to the host"
    );
    assert!(pod.wait("server").await.success());
    let cpu = pod
        .sandbox
        .container_status("server")
        .expect("status")
        .usage
        .cpu_time();
    assert!(cpu < idle / 2, "the idle server used {cpu:?} of CPU");
    assert_eq!(pod.sandbox.network().stats().connections, 0);
    pod.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_demo_example_succeeds() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/network-demo/pod.yaml"
    );
    let spec = wasmpod::spec::parse_pod_file(std::path::Path::new(manifest)).expect("manifest");
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, mut lines) = mpsc::unbounded_channel();
    let options = wasmpod::runner::RunOptions {
        on_log: Some(Arc::new(move |container, stream, line, _| {
            if container == "sidecar" && stream == LogStream::Stdout {
                let _ = tx.send(line.to_owned());
            }
        })),
        ..Default::default()
    };
    let process = tokio::task::block_in_place(|| {
        wasmpod::runner::PodProcess::prepare(
            engine(),
            spec,
            wasmpod::runner::Prepare::new(dir.path()),
        )
    })
    .expect("prepare");
    let run = process.run(options, wasmpod::runner::Shutdown::new());
    let status = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the pod ended before the deadline")
        .expect("run");
    assert_eq!(
        status.phase,
        wasmpod::status::Phase::Succeeded,
        "{status:?}"
    );
    let mut page = Vec::new();
    while let Ok(line) = lines.try_recv() {
        page.push(line);
    }
    assert!(
        page.iter()
            .any(|l| l.contains("<h1>Welcome to wasmpod!</h1>")),
        "{page:?}"
    );
}
