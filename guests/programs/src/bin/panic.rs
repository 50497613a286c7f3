//! `panic`: prints `about to panic` to stdout, then panics with the message
//! `guest panicked on purpose`.
//!
//! wasm32-wasi targets use `panic = "abort"`, so after std prints the panic
//! message to stderr the instance traps on `unreachable`.
//!
//! Arguments: none (any are ignored).

use std::io::Write as _;

fn main() {
    println!("about to panic");
    let _ = std::io::stdout().flush();
    panic!("guest panicked on purpose");
}
