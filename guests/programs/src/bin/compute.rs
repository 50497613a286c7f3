//! `compute N`: a compute-bound workload of N million rounds, then prints its checksum.
//!
//! Each round is a xorshift step folded into a running sum: no memory traffic, no host calls,
//! so the time it takes is pure guest CPU (what epoch interruption's cost is measured on).
//! Bad usage exits 2.

fn main() {
    let Some(Ok(millions)) = std::env::args().nth(1).map(|n| n.parse::<u64>()) else {
        eprintln!("compute: usage: compute N");
        std::process::exit(2);
    };
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut sum: u64 = 0;
    for _ in 0..millions * 1_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum = sum.wrapping_add(x);
    }
    println!("checksum {sum:016x}");
}
