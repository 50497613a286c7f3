//! `fill PATH BYTES [SLEEP_MS]`: writes BYTES bytes to PATH, then sleeps SLEEP_MS (default 0).
//!
//! Writes in 64 KiB chunks, prints `wrote N bytes` (or `fill PATH: <error>` on stderr and
//! exits 1 when a write fails), then sleeps: a guest that fills a volume and stays around.
//! Bad usage exits 2.

use std::io::Write as _;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(Ok(bytes))) = (args.get(1), args.get(2).map(|b| b.parse::<usize>()))
    else {
        eprintln!("fill: usage: fill PATH BYTES [SLEEP_MS]");
        std::process::exit(2);
    };
    let sleep_ms = args.get(3).and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0);
    let chunk = vec![b'f'; 64 << 10];
    let written = std::fs::File::create(path).and_then(|mut file| {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            file.write_all(&chunk[..n])?;
            left -= n;
        }
        file.sync_all()
    });
    if let Err(e) = written {
        eprintln!("fill {path}: {e}");
        std::process::exit(1);
    }
    println!("wrote {bytes} bytes");
    std::thread::sleep(Duration::from_millis(sleep_ms));
}
