//! `tcp COMMAND ...`: small TCP tools over `std::net`, for the virtual loopback's tests.
//!
//! - `tcp listen ADDR [--accept N] [--greet TEXT]`: binds and listens, prints
//!   `listening on LOCAL`, then accepts `N` connections (default 1), writes
//!   `TEXT` (default `hello`) to each and closes it, printing
//!   `accepted PEER`; exits 0.
//! - `tcp bind ADDR`: binds and listens, prints `bound LOCAL` and exits 0.
//! - `tcp connect ADDR [--wait-ms MS]`: connects (retrying refused connections
//!   for up to `MS` ms, default 0), reads to the end and prints
//!   `received: TEXT`.
//! - `tcp exhaust`: opens listeners on `127.0.0.1:0` until that fails, then
//!   prints `opened N sockets, then: ERROR` and exits 0.
//! - `tcp pingpong-server ADDR`: accepts one connection and echoes it one byte
//!   at a time until it ends.
//! - `tcp pingpong-client ADDR ROUNDS [--wait-ms MS]`: sends one byte and waits
//!   for it to come back, `ROUNDS` times, then prints
//!   `rtt n=ROUNDS min_ns=.. p50_ns=.. p90_ns=.. p99_ns=..`.
//!
//! A failing socket call prints `OP ADDR: KIND (ERROR)` (the `io::ErrorKind`,
//! e.g. `AddrInUse`, `ConnectionRefused`) to stdout and exits 1; bad usage
//! exits 2.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["listen", addr, rest @ ..] => {
            let accept = option(rest, "--accept").map_or(1, parse);
            let greet = option(rest, "--greet").unwrap_or("hello");
            let listener = bind(addr);
            for _ in 0..accept {
                let (mut stream, peer) = listener
                    .accept()
                    .unwrap_or_else(|e| fail("accept", addr, &e));
                stream
                    .write_all(greet.as_bytes())
                    .unwrap_or_else(|e| fail("write", addr, &e));
                println!("accepted {peer}");
            }
        }
        ["bind", addr] => {
            let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail("bind", addr, &e));
            let local = listener
                .local_addr()
                .unwrap_or_else(|e| fail("local_addr", addr, &e));
            println!("bound {local}");
        }
        ["connect", addr, rest @ ..] => {
            let wait = option(rest, "--wait-ms").map_or(0, parse);
            let mut stream = connect(addr, wait);
            let mut text = String::new();
            stream
                .read_to_string(&mut text)
                .unwrap_or_else(|e| fail("read", addr, &e));
            println!("received: {text}");
        }
        ["exhaust"] => {
            let mut sockets = Vec::new();
            loop {
                match TcpListener::bind("127.0.0.1:0") {
                    Ok(listener) => sockets.push(listener),
                    Err(e) => {
                        println!("opened {} sockets, then: {e}", sockets.len());
                        break;
                    }
                }
            }
        }
        ["pingpong-server", addr] => {
            let listener = bind(addr);
            let (mut stream, _) = listener
                .accept()
                .unwrap_or_else(|e| fail("accept", addr, &e));
            let mut byte = [0u8; 1];
            loop {
                match stream.read(&mut byte) {
                    Ok(0) => break,
                    Ok(_) => stream
                        .write_all(&byte)
                        .unwrap_or_else(|e| fail("write", addr, &e)),
                    Err(e) => fail("read", addr, &e),
                }
            }
        }
        ["pingpong-client", addr, rounds, rest @ ..] => {
            let rounds: usize = parse(rounds);
            let wait = option(rest, "--wait-ms").map_or(0, parse);
            let mut stream = connect(addr, wait);
            let mut samples = Vec::with_capacity(rounds);
            let mut byte = [7u8; 1];
            for _ in 0..rounds {
                let start = Instant::now();
                stream
                    .write_all(&byte)
                    .unwrap_or_else(|e| fail("write", addr, &e));
                stream
                    .read_exact(&mut byte)
                    .unwrap_or_else(|e| fail("read", addr, &e));
                samples.push(start.elapsed().as_nanos());
            }
            samples.sort_unstable();
            // Nearest rank, as the benchmark's own percentiles.
            let at = |p: usize| {
                let rank = (samples.len() * p)
                    .div_ceil(100)
                    .clamp(1, samples.len().max(1));
                samples.get(rank - 1).copied().unwrap_or(0)
            };
            println!(
                "rtt n={rounds} min_ns={} p50_ns={} p90_ns={} p99_ns={}",
                at(0),
                at(50),
                at(90),
                at(99)
            );
        }
        _ => {
            eprintln!(
                "tcp: usage: tcp listen|bind|connect|exhaust|pingpong-server|pingpong-client ..."
            );
            std::process::exit(2);
        }
    }
}

/// Binds and listens on `addr`, printing `listening on LOCAL`.
fn bind(addr: &str) -> TcpListener {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail("bind", addr, &e));
    let local = listener
        .local_addr()
        .unwrap_or_else(|e| fail("local_addr", addr, &e));
    println!("listening on {local}");
    listener
}

/// Connects to `addr`, retrying refused connections for `wait_ms` milliseconds.
fn connect(addr: &str, wait_ms: u64) -> TcpStream {
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return stream,
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => fail("connect", addr, &e),
        }
    }
}

/// The value following `name` in `args`.
fn option<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| *a == name)?;
    args.get(at + 1).copied()
}

fn parse<T: std::str::FromStr>(text: &str) -> T {
    text.parse().unwrap_or_else(|_| {
        eprintln!("tcp: not a number: {text}");
        std::process::exit(2);
    })
}

fn fail(op: &str, addr: &str, e: &std::io::Error) -> ! {
    println!("{op} {addr}: {:?} ({e})", e.kind());
    std::process::exit(1);
}
