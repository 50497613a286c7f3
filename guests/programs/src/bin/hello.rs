//! `hello`: prints `hello from wasm` to stdout and exits 0.
//!
//! Arguments: none (any are ignored).

fn main() {
    println!("hello from wasm");
}
