//! `flood MS`: writes stdout as fast as it can for MS milliseconds, then says how much.
//!
//! Each line is `flood NNNNNNNN` padded to 100 bytes; the last line is `done N lines`. A guest
//! that tests log backpressure and rotation. Bad usage exits 2.

use std::io::Write as _;
use std::time::{Duration, Instant};

fn main() {
    let Some(Ok(ms)) = std::env::args().nth(1).map(|ms| ms.parse::<u64>()) else {
        eprintln!("flood: usage: flood MS");
        std::process::exit(2);
    };
    let until = Instant::now() + Duration::from_millis(ms);
    let mut out = std::io::stdout().lock();
    let mut lines: u64 = 0;
    while Instant::now() < until {
        for _ in 0..100 {
            if writeln!(out, "flood {lines:08} {:<84}", "x").is_err() {
                std::process::exit(1);
            }
            lines += 1;
        }
    }
    let _ = writeln!(out, "done {lines} lines");
}
