//! `graceful OUT_PATH [EXIT_CODE]`: works until asked to terminate, then cleans up and exits.
//!
//! The guest-author example of wasmpod's termination request: WASI has no signals, so the
//! runtime creates the file named by `WASMPOD_TERMINATION_FILE` when the pod is stopping. This
//! guest prints `working`, then checks for that file every 10 ms; once it appears, it appends
//! `terminated: <reason>` to `OUT_PATH` and exits with `EXIT_CODE` (default 0). Bad usage
//! exits 2.

use std::io::Write as _;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1) else {
        eprintln!("graceful: usage: graceful OUT_PATH [EXIT_CODE]");
        std::process::exit(2);
    };
    let code = match args.get(2).map(|c| c.parse::<i32>()) {
        None => 0,
        Some(Ok(code)) => code,
        Some(Err(_)) => {
            eprintln!("graceful: EXIT_CODE must be a number");
            std::process::exit(2);
        }
    };
    let Ok(termination_file) = std::env::var("WASMPOD_TERMINATION_FILE") else {
        eprintln!("graceful: WASMPOD_TERMINATION_FILE is not set");
        std::process::exit(2);
    };
    println!("working");
    let reason = loop {
        if let Ok(reason) = std::fs::read_to_string(&termination_file) {
            break reason.trim().to_owned();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .and_then(|mut file| writeln!(file, "terminated: {reason}"));
    if let Err(e) = written {
        eprintln!("graceful {out}: {e}");
        std::process::exit(1);
    }
    println!("terminated: {reason}");
    std::process::exit(code);
}
