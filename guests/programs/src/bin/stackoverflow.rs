//! `stackoverflow`: recurses without bound until the wasm stack is
//! exhausted and the instance traps.
//!
//! Arguments: none (any are ignored).

use std::hint::black_box;

/// Never returns in practice: `black_box` hides the exit condition from the
/// optimiser and keeps the recursive call out of tail position.
fn recurse(depth: u64) -> u64 {
    if black_box(depth == u64::MAX) {
        return depth;
    }
    black_box(recurse(black_box(depth + 1))).wrapping_add(depth)
}

fn main() {
    println!("about to overflow the stack");
    let depth = recurse(0);
    println!("returned from depth {depth}?!");
}
