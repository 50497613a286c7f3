//! `trap`: prints `about to trap` to stdout, then executes a wasm
//! `unreachable` instruction, so the instance traps (no exit code).
//!
//! Arguments: none (any are ignored).

use std::io::Write as _;

fn main() {
    println!("about to trap");
    // Make sure the line reaches the host before the instance dies.
    let _ = std::io::stdout().flush();
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Only reached when built for a non-wasm target (e.g. by a stray
    // host-side `cargo check`); still dies abnormally.
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
