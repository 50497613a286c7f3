//! `membomb [--wait-for PATH] [MIB]`: allocates memory, e.g. to test memory limits.
//!
//! Allocates 1 MiB chunks, writing to every byte of each so the pages are
//! really touched, and keeps them all alive. Prints `allocated N MiB` every
//! 64 MiB. Without `MIB` it never stops, and ends with an allocation failure
//! (std prints `memory allocation of ... failed` and aborts, i.e. traps).
//! With `MIB` it stops after that many, prints `allocated MIB MiB` and exits 0.
//! With `--wait-for PATH` (first), it first waits until PATH exists (polling
//! every 10 ms): a test can change the container's limits before it allocates.
//! Bad usage exits 2.

use std::hint::black_box;
use std::time::Duration;

const CHUNK: usize = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.next_if(|a| a == "--wait-for").is_some() {
        let Some(path) = args.next() else {
            eprintln!("membomb: --wait-for needs a path");
            std::process::exit(2);
        };
        while std::fs::metadata(&path).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let stop = match args.next().map(|mib| mib.parse::<usize>()) {
        None => None,
        Some(Ok(mib)) => Some(mib),
        Some(Err(_)) => {
            eprintln!("membomb: usage: membomb [--wait-for PATH] [MIB]");
            std::process::exit(2);
        }
    };
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        if stop.is_some_and(|stop| chunks.len() >= stop) {
            println!("allocated {} MiB", chunks.len());
            return;
        }
        // A non-zero fill value forces every byte to be written.
        chunks.push(vec![0xA5; CHUNK]);
        black_box(&mut chunks);
        let mib = chunks.len();
        if mib.is_multiple_of(64) {
            println!("allocated {mib} MiB");
        }
    }
}
