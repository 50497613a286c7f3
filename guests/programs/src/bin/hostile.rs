//! `hostile WHAT ...`: a guest that misbehaves in one way, for the containment tests.
//!
//! - `hostile files DIR`: creates and opens files `DIR/f<N>`, keeping every one open, until an
//!   open fails; prints `opened N files, then: ERROR` and exits 0.
//! - `hostile tree DIR FILES DEPTH`: creates `FILES` empty files in `DIR/files` and a chain of
//!   `DEPTH` nested directories under `DIR/deep` (deeper than a path may be long: chains of
//!   at most 1000 levels are made and moved into one another), with a file at the bottom;
//!   prints `made FILES files and DEPTH levels` and exits 0.
//! - `hostile line BYTES`: writes `BYTES` bytes of `x` to stdout without a newline, in 64 KiB
//!   writes, then exits 0 (the last line has no newline either).
//! - `hostile connections`: listens on `127.0.0.1:0`, then connects to itself and accepts,
//!   holding both ends of every connection, until a connect or an accept fails; prints
//!   `held N connections, then: ERROR` and exits 0 (wasip2: wasip1 has no sockets).
//! - `hostile poll N MS`: subscribes `N` timers that never fire plus one that has, and polls
//!   all of them again and again for `MS` milliseconds; prints `polled N pollables C times`
//!   and exits 0 (wasip2: `wasi:io/poll`).
//! - `hostile args`: prints `N args of B bytes, M env of C bytes`.
//!
//! Bad usage exits 2.

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let words: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match words.as_slice() {
        ["files", dir] => files(dir),
        ["tree", dir, files, depth] => match (files.parse(), depth.parse()) {
            (Ok(files), Ok(depth)) => tree(dir, files, depth),
            _ => usage(),
        },
        ["line", bytes] => match bytes.parse() {
            Ok(bytes) => line(bytes),
            Err(_) => usage(),
        },
        ["connections"] => connections(),
        ["poll", n, ms] => match (n.parse(), ms.parse()) {
            (Ok(n), Ok(ms)) => poll(n, ms),
            _ => usage(),
        },
        ["args", ..] => {
            let env: Vec<(String, String)> = std::env::vars().collect();
            println!(
                "{} args of {} bytes, {} env of {} bytes",
                args.len(),
                args.iter().map(String::len).sum::<usize>(),
                env.len(),
                env.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            );
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("hostile: usage: hostile files DIR | tree DIR FILES DEPTH | line BYTES | connections | poll N MS | args");
    std::process::exit(2);
}

fn fail(what: &str, e: std::io::Error) -> ! {
    eprintln!("hostile {what}: {e}");
    std::process::exit(1);
}

fn files(dir: &str) {
    let mut open = Vec::new();
    loop {
        match std::fs::File::create(format!("{dir}/f{}", open.len())) {
            Ok(file) => open.push(file),
            Err(e) => {
                println!("opened {} files, then: {e}", open.len());
                return;
            }
        }
    }
}

fn tree(dir: &str, files: usize, depth: usize) {
    let dir = std::path::Path::new(dir);
    let base = dir.join("files");
    std::fs::create_dir_all(&base).unwrap_or_else(|e| fail("mkdir", e));
    for n in 0..files {
        std::fs::File::create(base.join(format!("{n}"))).unwrap_or_else(|e| fail("create", e));
    }
    // One chain of `depth` levels, built from chains short enough to name, each moved to the
    // bottom of the next.
    const CHAIN: usize = 1000;
    let mut made = 0;
    let mut previous: Option<String> = None;
    let mut round = 0;
    while made < depth || previous.is_none() {
        let levels = CHAIN.min(depth - made).max(1);
        let top = dir.join(format!("chain{round}"));
        let bottom = top.join("d/".repeat(levels - 1));
        std::fs::create_dir_all(&bottom).unwrap_or_else(|e| fail("mkdir chain", e));
        match &previous {
            None => std::fs::write(bottom.join("bottom"), "deep\n")
                .unwrap_or_else(|e| fail("write bottom", e)),
            Some(name) => std::fs::rename(dir.join(name), bottom.join("d"))
                .unwrap_or_else(|e| fail("move chain", e)),
        }
        previous = Some(format!("chain{round}"));
        made += levels;
        round += 1;
    }
    if let Some(name) = previous {
        std::fs::rename(dir.join(name), dir.join("deep")).unwrap_or_else(|e| fail("rename", e));
    }
    println!("made {files} files and {depth} levels");
}

fn connections() {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail("listen", e));
    let addr = listener.local_addr().unwrap_or_else(|e| fail("local_addr", e));
    let mut held = Vec::new();
    loop {
        let connected = std::net::TcpStream::connect(addr)
            .and_then(|client| Ok((client, listener.accept()?.0)));
        match connected {
            Ok(ends) => held.push(ends),
            Err(e) => {
                println!("held {} connections, then: {e}", held.len());
                return;
            }
        }
    }
}

#[cfg(target_env = "p2")]
fn poll(n: usize, ms: u64) {
    use wasip2::clocks::monotonic_clock::subscribe_duration;
    let never: Vec<_> = (0..n).map(|_| subscribe_duration(u64::MAX / 2)).collect();
    let ready = subscribe_duration(0);
    let mut all: Vec<&wasip2::io::poll::Pollable> = never.iter().collect();
    all.push(&ready);
    let start = std::time::Instant::now();
    let mut count = 0u64;
    while start.elapsed() < std::time::Duration::from_millis(ms) {
        wasip2::io::poll::poll(&all);
        count += 1;
    }
    println!("polled {n} pollables {count} times");
}

#[cfg(not(target_env = "p2"))]
fn poll(_: usize, _: u64) {
    eprintln!("hostile poll: wasip2 only");
    std::process::exit(2);
}

fn line(bytes: usize) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut stdout = std::io::stdout().lock();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stdout.write_all(&chunk[..n]).unwrap_or_else(|e| fail("write", e));
        left -= n;
    }
    stdout.flush().unwrap_or_else(|e| fail("flush", e));
}
