//! `exit CODE`: exits with status `CODE` via `std::process::exit`.
//!
//! Arguments: `argv[1]` is the exit code (an `i32`). A missing or unparsable
//! code prints `exit: <reason>` to stderr and exits 2.
//!
//! Note: on wasm32-wasip2 the exit code seen by the host depends on the
//! runtime (WASI 0.2 `wasi:cli/exit.exit` only carries ok/err).

fn main() {
    let arg = std::env::args().nth(1);
    let code = match arg.as_deref().map(str::parse::<i32>) {
        Some(Ok(code)) => code,
        Some(Err(e)) => {
            eprintln!("exit: invalid code {:?}: {e}", arg.unwrap_or_default());
            std::process::exit(2);
        }
        None => {
            eprintln!("exit: usage: exit CODE");
            std::process::exit(2);
        }
    };
    std::process::exit(code);
}
