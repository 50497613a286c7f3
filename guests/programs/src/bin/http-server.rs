//! `http-server [ADDR] [--requests N] [--body TEXT]`: a tiny HTTP/1.1 server.
//!
//! Listens on `ADDR` (default `0.0.0.0:80`), prints `listening on ADDR`, and
//! answers every request with `200 OK` and an HTML page (or `TEXT` as
//! `text/plain` with `--body`), one request per connection
//! (`Connection: close`). Prints `served METHOD PATH to PEER` after each one.
//! With `--requests N` it exits 0 after `N` requests; without it serves
//! forever. A bind error prints `http-server: bind ADDR: <error>` to stderr and
//! exits 1; bad usage exits 2.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};

const PAGE: &str = "<!DOCTYPE html>
<html>
<head><title>Welcome to wasmpod!</title></head>
<body>
<h1>Welcome to wasmpod!</h1>
<p>This page was served by a WebAssembly module over the pod's virtual loopback.</p>
</body>
</html>
";

fn main() {
    let mut addr = "0.0.0.0:80".to_owned();
    let mut requests: Option<u64> = None;
    let mut body: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => requests = Some(number(args.next())),
            "--body" => body = Some(args.next().unwrap_or_else(|| usage())),
            _ if arg.starts_with("--") => usage(),
            _ => addr = arg,
        }
    }
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("http-server: bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on {local}"),
        Err(_) => println!("listening on {addr}"),
    }
    let mut served = 0;
    while requests.is_none_or(|n| served < n) {
        match listener.accept() {
            Ok((stream, peer)) => match serve(stream, body.as_deref()) {
                Ok(line) => {
                    served += 1;
                    println!("served {line} to {peer}");
                }
                Err(e) => eprintln!("http-server: {peer}: {e}"),
            },
            Err(e) => eprintln!("http-server: accept: {e}"),
        }
    }
}

/// Reads one request and answers it; returns `METHOD PATH`.
fn serve(stream: TcpStream, body: Option<&str>) -> std::io::Result<String> {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("?").to_owned();
    let path = parts.next().unwrap_or("?").to_owned();
    let (content_type, content) = match body {
        Some(text) => ("text/plain", text),
        None => ("text/html", PAGE),
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{content}",
        content.len()
    );
    (&stream).write_all(response.as_bytes())?;
    (&stream).flush()?;
    Ok(format!("{method} {path}"))
}

fn number(arg: Option<String>) -> u64 {
    arg.and_then(|a| a.parse().ok()).unwrap_or_else(|| usage())
}

fn usage() -> ! {
    eprintln!("http-server: usage: http-server [ADDR] [--requests N] [--body TEXT]");
    std::process::exit(2);
}
