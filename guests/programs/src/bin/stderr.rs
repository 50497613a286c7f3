//! `stderr`: exercises both output streams.
//!
//! Prints `to stdout` (with newline) on stdout, `to stderr` (with newline)
//! on stderr, then `no newline` on stdout without a trailing newline, and
//! exits 0.
//!
//! Arguments: none (any are ignored).

use std::io::Write as _;

fn main() {
    println!("to stdout");
    eprintln!("to stderr");
    print!("no newline");
    let _ = std::io::stdout().flush();
}
