//! `cat [--wait-ms N] PATH...`: prints each file's contents to stdout; `-` is stdin, read to
//! its end.
//!
//! With `--wait-ms N` (which must come first), a file that does not exist
//! yet, or is still empty, is polled for every 10 ms until it has contents
//! or `N` milliseconds have passed since the guest started; this lets tests
//! wait for a file written by another container (which creates the file
//! before it writes to it). On error prints `cat PATH: <error>` to stderr and
//! exits 1; bad usage exits 2.

use std::io::{ErrorKind, Write as _};
use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let mut args = std::env::args().skip(1).peekable();
    let mut wait = Duration::ZERO;
    if args.next_if(|a| a == "--wait-ms").is_some() {
        match args.next().as_deref().map(str::parse::<u64>) {
            Some(Ok(ms)) => wait = Duration::from_millis(ms),
            _ => {
                eprintln!("cat: --wait-ms needs a number of milliseconds");
                std::process::exit(2);
            }
        }
    }
    let deadline = start + wait;

    let mut stdout = std::io::stdout().lock();
    for path in args {
        if path == "-" {
            let mut input = Vec::new();
            let result = std::io::Read::read_to_end(&mut std::io::stdin(), &mut input)
                .and_then(|_| stdout.write_all(&input));
            if let Err(e) = result {
                eprintln!("cat -: {e}");
                std::process::exit(1);
            }
            continue;
        }
        let contents = loop {
            let read = std::fs::read(&path);
            let waiting = match &read {
                Err(e) => e.kind() == ErrorKind::NotFound,
                Ok(bytes) => bytes.is_empty(),
            };
            if !waiting || Instant::now() >= deadline {
                break read;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let result = contents.and_then(|bytes| stdout.write_all(&bytes));
        if let Err(e) = result {
            eprintln!("cat {path}: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = stdout.flush() {
        eprintln!("cat: stdout: {e}");
        std::process::exit(1);
    }
}
