//! `sleep MS`: sleeps `MS` milliseconds with `std::thread::sleep`, then prints
//! `slept MS ms` and exits 0.
//!
//! Arguments: `argv[1]` is the duration in milliseconds (a `u64`). A missing
//! or unparsable duration prints `sleep: <reason>` to stderr and exits 2.

use std::time::Duration;

fn main() {
    let ms = match std::env::args().nth(1).as_deref().map(str::parse::<u64>) {
        Some(Ok(ms)) => ms,
        Some(Err(e)) => {
            eprintln!("sleep: invalid duration: {e}");
            std::process::exit(2);
        }
        None => {
            eprintln!("sleep: usage: sleep MS");
            std::process::exit(2);
        }
    };
    std::thread::sleep(Duration::from_millis(ms));
    println!("slept {ms} ms");
}
