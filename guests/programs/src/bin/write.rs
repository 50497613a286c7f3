//! `write [--append] PATH TEXT...`: writes a line of text to a file.
//!
//! Writes the `TEXT` arguments joined by single spaces, plus `"\n"`, to
//! `PATH`. The file is created if missing and truncated, unless `--append`
//! (which must come first) is given, in which case the line is appended.
//! Parent directories are not created. On error prints `write PATH: <error>`
//! to stderr and exits 1; bad usage exits 2.

use std::io::Write as _;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let append = args.next_if(|a| a == "--append").is_some();
    let Some(path) = args.next() else {
        eprintln!("write: usage: write [--append] PATH TEXT...");
        std::process::exit(2);
    };
    let mut line = args.collect::<Vec<_>>().join(" ");
    line.push('\n');

    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = result {
        eprintln!("write {path}: {e}");
        std::process::exit(1);
    }
}
