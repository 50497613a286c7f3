//! `spin`: prints `spinning`, then busy-loops forever without ever yielding
//! to the host (no WASI calls), e.g. to test epoch/fuel interruption and
//! pod termination.
//!
//! Arguments: none (any are ignored).

use std::hint::black_box;

fn main() {
    println!("spinning");
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}
