//! `membomb`: allocates memory until the engine refuses to grow linear
//! memory, e.g. to test memory limits.
//!
//! Allocates 1 MiB chunks forever, writing to every byte of each so the
//! pages are really touched, and keeps them all alive. Prints
//! `allocated N MiB` every 64 MiB. Ends with an allocation failure
//! (std prints `memory allocation of ... failed` and aborts, i.e. traps).
//!
//! Arguments: none (any are ignored).

use std::hint::black_box;

const CHUNK: usize = 1 << 20;

fn main() {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill value forces every byte to be written.
        chunks.push(vec![0xA5; CHUNK]);
        black_box(&mut chunks);
        let mib = chunks.len();
        if mib.is_multiple_of(64) {
            println!("allocated {mib} MiB");
        }
    }
}
