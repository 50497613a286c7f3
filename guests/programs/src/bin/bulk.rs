//! `bulk server|client ...`: streams a deterministic pattern over TCP and checksums what arrives.
//!
//! - `bulk server ADDR [--reply BYTES] [--read-chunk N] [--read-delay-ms MS] [--trap-after BYTES]`:
//!   listens (printing `listening on LOCAL`), accepts one connection and reads
//!   it to the end in reads of up to `N` bytes (default 65536), sleeping `MS`
//!   ms after each (a slow reader), then prints
//!   `received BYTES bytes checksum HEX`; a failed read prints
//!   `read failed after BYTES bytes: KIND (ERROR)` instead. Then writes `BYTES` bytes
//!   of the pattern with seed 2 (default 0) and closes, printing
//!   `sent BYTES bytes`. `--trap-after` traps once that many bytes were read.
//! - `bulk client ADDR BYTES [--write-chunk N] [--trap-after BYTES] [--wait-ms MS]`:
//!   connects (retrying refused connections for `MS` ms, default 10000),
//!   writes `BYTES` bytes of the pattern with seed 1 in writes of `N` bytes
//!   (default 65536, a multiple of 8), shuts down its sending side and reads
//!   the reply to the end; prints `sent BYTES bytes`,
//!   `received BYTES bytes checksum HEX` and `elapsed_ns=NS` (first write to
//!   the end of the reply). A failed write prints
//!   `write failed after BYTES bytes: KIND (ERROR)` and exits 1. `--trap-after` traps
//!   once that many bytes were written.
//!
//! The pattern is xorshift64 output, little endian, from the seed; the
//! checksum is 64-bit FNV-1a, in hex. `--raw` (either side) skips both for
//! throughput measurements: the client repeats the pattern's first chunk and
//! the server prints `checksum -`. Bad usage exits 2.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["server", addr, rest @ ..] => server(addr, rest),
        ["client", addr, bytes, rest @ ..] => client(addr, parse(bytes), rest),
        _ => usage(),
    }
}

fn server(addr: &str, args: &[&str]) {
    let reply: u64 = option(args, "--reply").map_or(0, parse);
    let chunk: usize = option(args, "--read-chunk").map_or(65536, parse);
    let delay = Duration::from_millis(option(args, "--read-delay-ms").map_or(0, parse));
    let trap_after: Option<u64> = option(args, "--trap-after").map(parse);
    let raw = args.contains(&"--raw");
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| fail("bind", &e));
    match listener.local_addr() {
        Ok(local) => println!("listening on {local}"),
        Err(e) => fail("local_addr", &e),
    }
    let (mut stream, _) = listener.accept().unwrap_or_else(|e| fail("accept", &e));
    let mut buf = vec![0u8; chunk.max(1)];
    let mut received = 0u64;
    let mut checksum = Fnv::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                match raw {
                    true => println!("received {received} bytes checksum -"),
                    false => println!("received {received} bytes checksum {:016x}", checksum.0),
                }
                break;
            }
            Ok(n) => {
                if !raw {
                    checksum.update(&buf[..n]);
                }
                received += n as u64;
                if trap_after.is_some_and(|at| received >= at) {
                    panic!("trapping after reading {received} bytes, as asked");
                }
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
            }
            Err(e) => {
                println!("read failed after {received} bytes: {:?} ({e})", e.kind());
                std::process::exit(1);
            }
        }
    }
    send(&mut stream, reply, 2, 65536, None, raw);
    println!("sent {reply} bytes");
}

fn client(addr: &str, bytes: u64, args: &[&str]) {
    let chunk: usize = option(args, "--write-chunk").map_or(65536, parse);
    let trap_after: Option<u64> = option(args, "--trap-after").map(parse);
    let raw = args.contains(&"--raw");
    let wait = Duration::from_millis(option(args, "--wait-ms").map_or(10_000, parse));
    if chunk == 0 || !chunk.is_multiple_of(8) {
        usage();
    }
    let deadline = Instant::now() + wait;
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => fail("connect", &e),
        }
    };
    let start = Instant::now();
    send(&mut stream, bytes, 1, chunk, trap_after, raw);
    println!("sent {bytes} bytes");
    stream
        .shutdown(Shutdown::Write)
        .unwrap_or_else(|e| fail("shutdown", &e));
    let mut buf = vec![0u8; 65536];
    let mut received = 0u64;
    let mut checksum = Fnv::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !raw {
                    checksum.update(&buf[..n]);
                }
                received += n as u64;
            }
            Err(e) => {
                println!("read failed after {received} bytes: {:?} ({e})", e.kind());
                std::process::exit(1);
            }
        }
    }
    let elapsed = start.elapsed();
    println!("received {received} bytes checksum {:016x}", checksum.0);
    println!("elapsed_ns={}", elapsed.as_nanos());
}

/// Writes `bytes` bytes of the pattern seeded with `seed`, `chunk` bytes at a time (`raw`:
/// the first chunk over and over).
fn send(
    stream: &mut TcpStream,
    bytes: u64,
    seed: u64,
    chunk: usize,
    trap_after: Option<u64>,
    raw: bool,
) {
    let mut pattern = Pattern(seed);
    let mut buf = vec![0u8; chunk];
    let mut sent = 0u64;
    while sent < bytes {
        let n = usize::try_from(bytes - sent).map_or(chunk, |left| left.min(chunk));
        if !raw || sent == 0 {
            pattern.fill(&mut buf);
        }
        if let Err(e) = stream.write_all(&buf[..n]) {
            println!("write failed after {sent} bytes: {:?} ({e})", e.kind());
            std::process::exit(1);
        }
        sent += n as u64;
        if trap_after.is_some_and(|at| sent >= at) {
            panic!("trapping after writing {sent} bytes, as asked");
        }
    }
}

/// xorshift64, emitted as little-endian words.
struct Pattern(u64);

impl Pattern {
    fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
    }
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn option<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| *a == name)?;
    args.get(at + 1).copied()
}

fn parse<T: std::str::FromStr>(text: &str) -> T {
    text.parse().unwrap_or_else(|_| usage())
}

fn fail(op: &str, e: &std::io::Error) -> ! {
    println!("{op}: {:?} ({e})", e.kind());
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!("bulk: usage: bulk server ADDR [options] | bulk client ADDR BYTES [options]");
    std::process::exit(2);
}
