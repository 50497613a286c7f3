//! `http-get URL [--wait-ms MS]`: fetches `http://HOST:PORT/PATH` and prints
//! the response body.
//!
//! Speaks just enough HTTP/1.1 (`GET`, `Connection: close`, body read to the
//! end of the stream). While the server refuses connections (it may still be
//! starting, as a sidecar's server often is), retries every 20 ms for up to
//! `MS` milliseconds (default 10000). Prints the body to stdout and exits 0 on
//! a `200` status; prints `http-get: <reason>` to stderr and exits 1 on any
//! other status or error; bad usage exits 2.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let mut url = None;
    let mut wait = Duration::from_secs(10);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--wait-ms" => match args.next().and_then(|a| a.parse().ok()) {
                Some(ms) => wait = Duration::from_millis(ms),
                None => usage(),
            },
            _ if url.is_none() => url = Some(arg),
            _ => usage(),
        }
    }
    let Some(url) = url else { usage() };
    let Some((authority, path)) = parse(&url) else {
        fail(&format!("not an http:// URL: {url}"))
    };
    let stream =
        connect(&authority, wait).unwrap_or_else(|e| fail(&format!("connect {authority}: {e}")));
    let response =
        fetch(stream, &authority, &path).unwrap_or_else(|e| fail(&format!("{url}: {e}")));
    let (head, body) = match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&response[..at], &response[at + 4..]),
        None => fail(&format!("{url}: malformed response")),
    };
    let head = String::from_utf8_lossy(head);
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        fail(&format!("{url}: status {status}"));
    }
    let mut stdout = std::io::stdout();
    if stdout
        .write_all(body)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(1);
    }
}

/// `http://AUTHORITY/PATH` → `(AUTHORITY, /PATH)`; port 80 is added when missing.
fn parse(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((authority, path.to_owned()))
}

/// Connects, retrying refused connections until `wait` has passed.
fn connect(authority: &str, wait: Duration) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + wait;
    loop {
        match TcpStream::connect(authority) {
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn fetch(mut stream: TcpStream, authority: &str, path: &str) -> std::io::Result<Vec<u8>> {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: wasmpod-http-get\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

fn fail(message: &str) -> ! {
    eprintln!("http-get: {message}");
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!("http-get: usage: http-get URL [--wait-ms MS]");
    std::process::exit(2);
}
