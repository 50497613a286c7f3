//! `http-load URL [--connections C] [--requests N] [--warmup W]`: an HTTP/1.1 load generator.
//!
//! Opens `C` keep-alive connections (default 1) to `http://HOST:PORT` and sends `GET PATH`
//! requests over them, round-robin from one thread: a round writes one request on every
//! connection, then reads every connection's response, so each connection has one request
//! in flight. The first `W` requests (default 0) are not counted; then `N` (default 1000) are
//! timed, each from its request's write to the end of its response's body
//! (`std::time::Instant`, the WASI monotonic clock). A response needs a `Content-Length` (no
//! chunked bodies) and must not close its connection. While the server refuses connections,
//! connects are retried every 20 ms for up to 10 s.
//!
//! At the end it prints `requests N in S s: R req/s p50 X us p99 Y us p99.9 Z us max W us`
//! (nearest-rank percentiles, microseconds) and exits 0, or 1 if a response was not `200`
//! (`http-load: errors E: FIRST` on stderr) or a connection failed (`http-load: <reason>`).
//! Bad usage exits 2; so does wasip1, which has no sockets.

#[cfg(target_env = "p2")]
fn main() {
    load::main();
}

#[cfg(not(target_env = "p2"))]
fn main() {
    eprintln!("http-load: needs wasip2 sockets; this is a wasip1 build");
    std::process::exit(2);
}

#[cfg(target_env = "p2")]
mod load {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// How long refused connects are retried.
    const CONNECT_WAIT: Duration = Duration::from_secs(10);
    /// Bytes read at a time.
    const READ_CHUNK: usize = 16 * 1024;

    struct Options {
        authority: String,
        path: String,
        connections: usize,
        requests: u64,
        warmup: u64,
    }

    pub fn main() {
        let options = parse_args();
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wasmpod-http-load\r\nConnection: keep-alive\r\n\r\n",
            options.path, options.authority
        );
        let mut connections: Vec<Connection> = (0..options.connections)
            .map(|_| {
                connect(&options.authority)
                    .map(Connection::new)
                    .unwrap_or_else(|e| fail(&format!("connect {}: {e}", options.authority)))
            })
            .collect();

        let total = options.warmup + options.requests;
        let mut sent = 0u64;
        let mut errors = 0u64;
        let mut first_error = None;
        let mut latencies =
            Vec::with_capacity(usize::try_from(options.requests.min(1 << 20)).unwrap_or(0));
        let mut timed_from = Instant::now();
        while sent < total {
            if sent == options.warmup {
                timed_from = Instant::now();
            }
            // One round: at most one request per connection, none past the warm-up's end (so
            // that the timed requests start together) or past the total.
            let limit = if sent < options.warmup {
                options.warmup
            } else {
                total
            };
            let round = usize::try_from(limit - sent)
                .map_or(connections.len(), |left| left.min(connections.len()));
            let mut started = Vec::with_capacity(round);
            for connection in &mut connections[..round] {
                started.push(Instant::now());
                connection
                    .send(request.as_bytes())
                    .unwrap_or_else(|e| fail(&format!("write: {e}")));
            }
            for (connection, started) in connections[..round].iter_mut().zip(started) {
                let status = connection
                    .response()
                    .unwrap_or_else(|e| fail(&format!("response: {e}")));
                let latency = started.elapsed();
                if status != 200 {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("status {status}"));
                }
                if sent >= options.warmup {
                    latencies.push(latency);
                }
                sent += 1;
            }
        }
        let elapsed = timed_from.elapsed();

        latencies.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            latencies.len() as f64 / seconds
        } else {
            0.0
        };
        println!(
            "requests {} in {seconds:.3} s: {rate:.1} req/s p50 {:.1} us p99 {:.1} us p99.9 {:.1} us max {:.1} us",
            latencies.len(),
            micros(percentile(&latencies, 50.0)),
            micros(percentile(&latencies, 99.0)),
            micros(percentile(&latencies, 99.9)),
            micros(latencies.last().copied().unwrap_or_default()),
        );
        if let Some(first) = first_error {
            eprintln!("http-load: errors {errors}: {first}");
            std::process::exit(1);
        }
    }

    fn parse_args() -> Options {
        let mut url = None;
        let mut connections = 1usize;
        let mut requests = 1000u64;
        let mut warmup = 0u64;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--connections" => match args.next().and_then(|a| a.parse().ok()) {
                    Some(c) if c > 0 => connections = c,
                    _ => usage(),
                },
                "--requests" => match args.next().and_then(|a| a.parse().ok()) {
                    Some(n) => requests = n,
                    None => usage(),
                },
                "--warmup" => match args.next().and_then(|a| a.parse().ok()) {
                    Some(n) => warmup = n,
                    None => usage(),
                },
                _ if url.is_none() && !arg.starts_with("--") => url = Some(arg),
                _ => usage(),
            }
        }
        let Some(url) = url else { usage() };
        let Some((authority, path)) = parse_url(&url) else {
            eprintln!("http-load: not an http://HOST:PORT[/PATH] URL: {url}");
            std::process::exit(2);
        };
        Options {
            authority,
            path,
            connections,
            requests,
            warmup,
        }
    }

    /// `http://HOST:PORT[/PATH]` → `(HOST:PORT, /PATH)`.
    fn parse_url(url: &str) -> Option<(String, String)> {
        let rest = url.strip_prefix("http://")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if !authority.contains(':') {
            return None;
        }
        Some((authority.to_owned(), path.to_owned()))
    }

    /// Connects, retrying refused connections for up to [`CONNECT_WAIT`].
    fn connect(authority: &str) -> std::io::Result<TcpStream> {
        let deadline = Instant::now() + CONNECT_WAIT;
        loop {
            match TcpStream::connect(authority) {
                Err(e)
                    if e.kind() == std::io::ErrorKind::ConnectionRefused
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One keep-alive connection and the bytes read past the last response.
    struct Connection {
        stream: TcpStream,
        buffer: Vec<u8>,
    }

    impl Connection {
        fn new(stream: TcpStream) -> Self {
            Connection {
                stream,
                buffer: Vec::with_capacity(READ_CHUNK),
            }
        }

        fn send(&mut self, request: &[u8]) -> Result<(), String> {
            self.stream
                .write_all(request)
                .and_then(|()| self.stream.flush())
                .map_err(|e| e.to_string())
        }

        /// Reads one response (status line, headers, `Content-Length` body); its status.
        fn response(&mut self) -> Result<u16, String> {
            let head_end = loop {
                if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                self.fill()?;
            };
            let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
                [version, code, ..] if version.starts_with("HTTP/1.") => code
                    .parse::<u16>()
                    .map_err(|_| format!("bad status line {status_line:?}"))?,
                _ => return Err(format!("bad status line {status_line:?}")),
            };
            let mut length = None;
            for line in lines {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let (name, value) = (name.trim(), value.trim());
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(
                        value
                            .parse::<usize>()
                            .map_err(|_| format!("bad content-length {value:?}"))?,
                    );
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(format!("unsupported transfer-encoding {value:?}"));
                } else if name.eq_ignore_ascii_case("connection")
                    && value.eq_ignore_ascii_case("close")
                {
                    return Err("the server closes the connection".to_owned());
                }
            }
            let length = length.ok_or("no content-length")?;
            while self.buffer.len() < head_end + length {
                self.fill()?;
            }
            self.buffer.drain(..head_end + length);
            Ok(status)
        }

        /// Appends what the next read returns; the end of the stream is an error.
        fn fill(&mut self) -> Result<(), String> {
            let old = self.buffer.len();
            self.buffer.resize(old + READ_CHUNK, 0);
            let read = self.stream.read(&mut self.buffer[old..]);
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    self.buffer.truncate(old);
                    return Err(e.to_string());
                }
            };
            self.buffer.truncate(old + n);
            if n == 0 {
                return Err("the server closed the connection".to_owned());
            }
            Ok(())
        }
    }

    /// The `p`-th percentile of `sorted` by nearest rank; zero when empty.
    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn micros(d: Duration) -> f64 {
        d.as_secs_f64() * 1e6
    }

    fn fail(message: &str) -> ! {
        eprintln!("http-load: {message}");
        std::process::exit(1);
    }

    fn usage() -> ! {
        eprintln!(
            "http-load: usage: http-load http://HOST:PORT[/PATH] [--connections C] [--requests N] [--warmup W]"
        );
        std::process::exit(2);
    }
}
