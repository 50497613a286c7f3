//! wasmpod's built-in toolbox: the commands people type into a pod to look around.
//!
//! `kubectl exec POD -c C -- CMD ARGS...` runs `CMD` as a Wasm command inside the container.
//! When `CMD` is neither a module in the container's filesystem nor on its `PATH` but
//! [`is_tool`], wasmpod runs [`TOOLBOX`] instead, with `argv = [CMD, ARGS...]`: one multi-call
//! wasip2 component (like busybox) built from `toolbox/` at the repository root by this crate's
//! build script and embedded here. It is sandboxed like any guest: it sees the container's
//! preopened directories, its environment and the pod's network, nothing else.
//!
//! The tools ([`TOOLS`]) take busybox's common flags: `ls [-1aAdhl]`, `cat`, `env`,
//! `echo [-neE]`, `sleep`, `ps`, `netstat [-tulnap]` and `wget [-q] [-O FILE] URL`
//! (`http://` only). A guest has no `/proc`, so `ps` and `netstat` read what the runtime writes
//! about the pod into the directory it preopens at [`POD_INFO_DIR`], one record per line,
//! tab-separated, no header:
//!
//! - [`CONTAINERS_FILE`]: `NAME\tSTATE\tRESTARTS\tIMAGE`, STATE one of `created`, `running`,
//!   `exited`;
//! - [`SOCKETS_FILE`]: `PROTO\tLOCAL\tREMOTE\tSTATE\tCONTAINER`, e.g.
//!   `tcp\t0.0.0.0:80\t0.0.0.0:*\tLISTEN\tweb`.
//!
//! Without that directory they say `no process information (not running under wasmpod)`.
//!
//! Exit codes follow coreutils (0 ok, 1 error, 2 bad usage, 127 no such tool); the toolbox
//! reports them through `wasi:cli/exit.exit-with-code` (Rust's std alone would say 0 or 1).

/// The toolbox component (wasm32-wasip2), to be compiled like any guest's image.
pub const TOOLBOX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/toolbox.wasm"));

/// The toolbox's tools, in the order `toolbox --list` prints them.
pub const TOOLS: &[&str] = &["ls", "cat", "env", "echo", "sleep", "ps", "netstat", "wget"];

/// Where the toolbox's `ps` and `netstat` look for the runtime's files about the pod (a guest
/// path).
pub const POD_INFO_DIR: &str = "/run/wasmpod/pod";

/// The pod's containers, read by `ps`: the name of the file in [`POD_INFO_DIR`].
pub const CONTAINERS_FILE: &str = "containers";

/// The pod's sockets, read by `netstat`: the name of the file in [`POD_INFO_DIR`].
pub const SOCKETS_FILE: &str = "sockets";

/// Whether the toolbox has a tool called `name` (an exact, case-sensitive match; the toolbox
/// itself is not a tool).
pub fn is_tool(name: &str) -> bool {
    TOOLS.contains(&name)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::TcpListener;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

    use super::*;
    use crate::engine::{GuestIo, Image, Invocation, Preopen};
    use crate::hostdir::HostDir;
    use crate::net::{Network, NetworkConfig};
    use crate::{Engine, EngineConfig, ExitStatus};

    const DEADLINE: Duration = Duration::from_secs(60);
    /// What a failing tool exits with (coreutils' codes, as a shell's tools say them).
    const FAILED: i32 = 1;
    const USAGE: i32 = 2;
    const NOT_FOUND: i32 = 127;

    /// One engine and the compiled toolbox for every test.
    fn toolbox() -> &'static (Engine, Image) {
        static TOOLBOX_IMAGE: OnceLock<(Engine, Image)> = OnceLock::new();
        TOOLBOX_IMAGE.get_or_init(|| {
            let engine = Engine::new(EngineConfig {
                cache_dir: None,
                ..EngineConfig::default()
            })
            .expect("engine");
            let file = tempfile::NamedTempFile::new().expect("temp file");
            std::fs::write(file.path(), TOOLBOX).expect("write the toolbox");
            let image = engine
                .load_image(file.path())
                .expect("the toolbox compiles");
            (engine, image)
        })
    }

    fn invocation(argv: &[&str]) -> Invocation {
        Invocation {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            ..Invocation::default()
        }
    }

    fn preopen(dir: &std::path::Path, guest: &str) -> Preopen {
        Preopen {
            dir: HostDir::open(dir).expect("open the preopened dir"),
            guest: guest.to_owned(),
            read_only: false,
        }
    }

    #[derive(Debug)]
    struct Output {
        exit: ExitStatus,
        stdout: String,
        stderr: String,
    }

    /// A guest's output as it is being written.
    struct Capture {
        stdout: MemoryOutputPipe,
        stderr: MemoryOutputPipe,
    }

    impl Capture {
        fn new() -> Capture {
            Capture {
                stdout: MemoryOutputPipe::new(1 << 20),
                stderr: MemoryOutputPipe::new(1 << 20),
            }
        }

        fn io(&self) -> GuestIo {
            GuestIo {
                stdout: Box::new(self.stdout.clone()),
                stderr: Box::new(self.stderr.clone()),
            }
        }

        fn output(&self, exit: ExitStatus) -> Output {
            let text = |pipe: &MemoryOutputPipe| {
                String::from_utf8(pipe.contents().to_vec()).expect("UTF-8 output")
            };
            Output {
                exit,
                stdout: text(&self.stdout),
                stderr: text(&self.stderr),
            }
        }
    }

    async fn run_image(image: &Image, invocation: Invocation) -> Output {
        let engine = &toolbox().0;
        let capture = Capture::new();
        let run = engine.run(image, invocation, capture.io(), CancellationToken::new());
        let exit = tokio::time::timeout(DEADLINE, run)
            .await
            .expect("the guest ends before the deadline");
        capture.output(exit)
    }

    async fn run(invocation: Invocation) -> Output {
        run_image(&toolbox().1, invocation).await
    }

    /// Runs a tool that must succeed; returns its stdout.
    async fn stdout_of(invocation: Invocation) -> String {
        let out = run(invocation).await;
        assert_eq!((out.exit.code, out.stderr.as_str()), (0, ""), "{out:?}");
        out.stdout
    }

    #[test]
    fn the_embedded_toolbox_is_a_component() {
        // `\0asm`, then version 0x0d and layer 1: a component, not a core module.
        assert_eq!(TOOLBOX.get(..8), Some(&b"\0asm\x0d\x00\x01\x00"[..]));
        assert!(is_tool("ls") && is_tool("wget"));
        assert!(!is_tool("toolbox") && !is_tool("LS") && !is_tool("vi") && !is_tool(""));
    }

    #[tokio::test]
    async fn the_toolbox_lists_exactly_the_tools() {
        let listed = stdout_of(invocation(&["toolbox", "--list"])).await;
        assert_eq!(listed.lines().collect::<Vec<_>>(), TOOLS);
        let usage = stdout_of(invocation(&["toolbox"])).await;
        assert!(usage.starts_with("Usage: toolbox"), "{usage}");
    }

    #[tokio::test]
    async fn an_unknown_tool_is_not_found() {
        for argv in [&["vi", "x"][..], &["toolbox", "vi"]] {
            let out = run(invocation(argv)).await;
            assert_eq!(out.exit.code, NOT_FOUND, "{out:?}");
            assert_eq!(
                (out.stdout.as_str(), out.stderr.as_str()),
                ("", "vi: applet not found\n")
            );
        }
    }

    #[tokio::test]
    async fn echo_env_and_sleep() {
        assert_eq!(
            stdout_of(invocation(&["echo", "hello", "pod"])).await,
            "hello pod\n"
        );
        assert_eq!(stdout_of(invocation(&["/bin/echo", "-n", "x"])).await, "x");
        assert_eq!(
            stdout_of(invocation(&["toolbox", "echo", "-e", "a\\tb"])).await,
            "a\tb\n"
        );

        let mut env = invocation(&["env"]);
        env.env = vec![
            ("HOSTNAME".into(), "web-0".into()),
            ("A".into(), "b=c".into()),
        ];
        assert_eq!(stdout_of(env).await, "HOSTNAME=web-0\nA=b=c\n");

        let start = Instant::now();
        assert_eq!(stdout_of(invocation(&["sleep", "0.2"])).await, "");
        assert!(start.elapsed() >= Duration::from_millis(200));
        let out = run(invocation(&["sleep", "soon"])).await;
        assert_eq!(
            (out.exit.code, out.stderr.as_str()),
            (FAILED, "sleep: invalid number 'soon'\n")
        );
        let out = run(invocation(&["sleep"])).await;
        assert_eq!(out.exit.code, USAGE, "{out:?}");
        assert!(
            out.stderr
                .starts_with("sleep: missing operand\nUsage: sleep"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn ls_and_cat_see_the_preopened_directories_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>\n").expect("write");
        std::fs::write(dir.path().join(".hidden"), "").expect("write");
        std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
        let with_data = |argv: &[&str]| {
            let mut invocation = invocation(argv);
            invocation.preopens.push(preopen(dir.path(), "/data"));
            invocation
        };

        assert_eq!(
            stdout_of(with_data(&["ls", "/data"])).await,
            "index.html\nlogs\n"
        );
        assert_eq!(
            stdout_of(with_data(&["ls", "-a", "/data"])).await,
            ".\n..\n.hidden\nindex.html\nlogs\n"
        );
        let long = stdout_of(with_data(&["ls", "-l", "/data"])).await;
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines.len(), 2, "{long}");
        assert!(
            lines[0].starts_with("-rw-r--r-- ") && lines[0].ends_with(" index.html"),
            "{long}"
        );
        assert!(lines[0].contains(" 12 "), "the size: {long}");
        assert!(
            lines[1].starts_with("drwxr-xr-x ") && lines[1].ends_with(" logs"),
            "{long}"
        );

        assert_eq!(
            stdout_of(with_data(&["cat", "/data/index.html"])).await,
            "<h1>hi</h1>\n"
        );
        let out = run(with_data(&["cat", "/data/nope"])).await;
        assert_eq!(out.exit.code, FAILED);
        assert_eq!(
            out.stderr,
            "cat: can't open '/data/nope': No such file or directory\n"
        );

        // Nothing outside the preopens: not the host's /etc.
        let out = run(with_data(&["cat", "/etc/hostname"])).await;
        assert_eq!(
            (out.exit.code, out.stdout.as_str()),
            (FAILED, ""),
            "{out:?}"
        );
        let out = run(with_data(&["ls", "/etc"])).await;
        assert_eq!(
            (out.exit.code, out.stdout.as_str()),
            (FAILED, ""),
            "{out:?}"
        );
        let out = run(with_data(&["ls", "-z"])).await;
        assert!(
            out.stderr
                .starts_with("ls: invalid option -- 'z'\nUsage: ls"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn ps_and_netstat_read_the_pods_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CONTAINERS_FILE),
            "web\trunning\t0\tghcr.io/example/web:1.0\nlog-shipper\texited\t3\tshipper.wasm\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join(SOCKETS_FILE),
            "tcp\t0.0.0.0:80\t0.0.0.0:*\tLISTEN\tweb\n\
             tcp\t127.0.0.1:80\t127.0.0.1:41234\tESTABLISHED\tweb\n\
             tcp\t127.0.0.1:41234\t127.0.0.1:80\tESTABLISHED\tlog-shipper\n",
        )
        .expect("write");
        let in_pod = |argv: &[&str]| {
            let mut invocation = invocation(argv);
            invocation.preopens.push(Preopen {
                read_only: true,
                ..preopen(dir.path(), POD_INFO_DIR)
            });
            invocation
        };

        assert_eq!(
            stdout_of(in_pod(&["ps"])).await,
            "NAME         STATE    RESTARTS  IMAGE\n\
             web          running  0         ghcr.io/example/web:1.0\n\
             log-shipper  exited   3         shipper.wasm\n"
        );
        assert_eq!(stdout_of(in_pod(&["ps", "aux"])).await.lines().count(), 3);
        assert_eq!(
            stdout_of(in_pod(&["netstat", "-tln"])).await,
            "Active Internet connections (only servers)\n\
             Proto Recv-Q Send-Q Local Address           Foreign Address         State\n\
             tcp        0      0 0.0.0.0:80              0.0.0.0:*               LISTEN\n"
        );
        let connections = stdout_of(in_pod(&["netstat", "-tnp"])).await;
        let lines: Vec<&str> = connections.lines().collect();
        assert_eq!(lines[0], "Active Internet connections (w/o servers)");
        assert!(
            lines[1].ends_with("State       PID/Program name"),
            "{connections}"
        );
        assert_eq!(
            lines[3],
            "tcp        0      0 127.0.0.1:41234         127.0.0.1:80            ESTABLISHED log-shipper"
        );
        assert_eq!(lines.len(), 4, "{connections}");
        assert_eq!(
            stdout_of(in_pod(&["netstat", "-tulpna"]))
                .await
                .lines()
                .count(),
            5
        );

        // Outside wasmpod's exec there is no such directory.
        let out = run(invocation(&["ps"])).await;
        assert_eq!(out.exit.code, FAILED);
        assert_eq!(
            out.stderr,
            "ps: no process information (not running under wasmpod)\n"
        );
        let out = run(invocation(&["netstat", "-tln"])).await;
        assert_eq!(out.exit.code, FAILED);
        assert_eq!(
            out.stderr,
            "netstat: no socket information (not running under wasmpod)\n"
        );
    }

    /// The `http-server` guest on `addr` in `network`, serving `requests` requests with
    /// `body`; returns when it listens.
    async fn http_server(
        network: &Network,
        addr: &str,
        requests: u32,
        body: &str,
    ) -> tokio::task::JoinHandle<Output> {
        let engine = &toolbox().0;
        let server = engine
            .load_image(std::path::Path::new(wasmpod_guests::HTTP_SERVER_P2))
            .expect("http-server compiles");
        let capture = Capture::new();
        let stdout = capture.stdout.clone();
        let mut invocation = invocation(&[
            "http-server",
            addr,
            "--requests",
            &requests.to_string(),
            "--body",
            body,
        ]);
        invocation.network = network.clone();
        let task = tokio::spawn(async move {
            let run = engine.run(&server, invocation, capture.io(), CancellationToken::new());
            let exit = tokio::time::timeout(DEADLINE, run)
                .await
                .expect("server ends");
            capture.output(exit)
        });
        let start = Instant::now();
        while !String::from_utf8_lossy(&stdout.contents()).contains("listening on") {
            assert!(start.elapsed() < DEADLINE, "http-server never listened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task
    }

    #[tokio::test]
    async fn wget_fetches_from_a_server_in_the_pod() {
        let network = Network::default();
        let server = http_server(&network, "127.0.0.1:8080", 3, "hello from the pod").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let in_pod = |argv: &[&str]| {
            let mut invocation = invocation(argv);
            invocation.network = network.clone();
            invocation.preopens.push(preopen(dir.path(), "/data"));
            invocation
        };

        let out = run(in_pod(&["wget", "-O-", "http://127.0.0.1:8080/"])).await;
        assert_eq!(out.exit.code, 0, "{out:?}");
        assert_eq!(out.stdout, "hello from the pod");
        assert_eq!(
            out.stderr,
            "Connecting to 127.0.0.1:8080\nwriting to stdout\nwritten to stdout\n"
        );
        // Names through wasi:sockets/ip-name-lookup: localhost is the pod's loopback.
        let out = run(in_pod(&["wget", "-qO-", "http://localhost:8080/healthz"])).await;
        assert_eq!(
            (out.exit.code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "hello from the pod", "")
        );
        let out = run(in_pod(&[
            "wget",
            "-q",
            "-O",
            "/data/page.txt",
            "localhost:8080/page",
        ]))
        .await;
        assert_eq!((out.exit.code, out.stderr.as_str()), (0, ""), "{out:?}");
        let saved = std::fs::read_to_string(dir.path().join("page.txt")).expect("saved");
        assert_eq!(saved, "hello from the pod");

        let server = server.await.expect("server task");
        assert_eq!(server.exit.code, 0, "{server:?}");
        let served: Vec<&str> = server
            .stdout
            .lines()
            .filter(|l| l.starts_with("served"))
            .collect();
        assert_eq!(served.len(), 3, "{server:?}");
        assert!(
            served[1].starts_with("served GET /healthz to 127.0.0.1:"),
            "{served:?}"
        );

        // Nobody listens any more.
        let out = run(in_pod(&["wget", "-q", "-O-", "http://127.0.0.1:8080/"])).await;
        assert_eq!(out.exit.code, FAILED);
        assert_eq!(
            out.stderr,
            "wget: can't connect to remote host (127.0.0.1): Connection refused\n"
        );
    }

    #[tokio::test]
    async fn wget_reports_http_errors_and_refuses_https() {
        // A server on the host's own loopback, which the guest reaches with the virtual
        // loopback off: it answers 404, then a chunked 200.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let host = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for response in [
                "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            ] {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                while !request.ends_with("\r\n\r\n") {
                    if reader.read_line(&mut request).expect("read") == 0 {
                        break;
                    }
                }
                requests.push(request);
                stream.write_all(response.as_bytes()).expect("write");
            }
            requests
        });
        let network = Network::new(NetworkConfig {
            virtual_loopback: false,
            ..NetworkConfig::default()
        });
        let on_host = |argv: &[&str]| {
            let mut invocation = invocation(argv);
            invocation.network = network.clone();
            invocation
        };
        let url = format!("http://127.0.0.1:{port}/missing");

        let out = run(on_host(&["wget", "-q", "-O-", &url])).await;
        assert_eq!(
            (out.exit.code, out.stdout.as_str()),
            (FAILED, ""),
            "{out:?}"
        );
        assert_eq!(
            out.stderr,
            "wget: server returned error: HTTP/1.1 404 Not Found\n"
        );
        let out = run(on_host(&["wget", "-qO-", &url])).await;
        assert_eq!(
            (out.exit.code, out.stdout.as_str()),
            (0, "abcde"),
            "{out:?}"
        );

        let requests = host.join().expect("host server");
        assert_eq!(
            requests[0],
            format!(
                "GET /missing HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                 User-Agent: Wget (wasmpod toolbox)\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
        );

        let out = run(invocation(&["wget", "https://example.com/"])).await;
        assert_eq!(out.exit.code, FAILED);
        assert_eq!(out.stderr, "wget: https is not supported\n");
    }
}
