//! `oob`: reads one byte far outside linear memory, so the instance traps
//! with an out-of-bounds memory access.
//!
//! Arguments: none (any are ignored).

/// An address near the top of the 4 GiB wasm32 address space; guests never
/// have anywhere near that much linear memory.
const FAR_AWAY: usize = 0xFFFF_FFF0;

#[allow(unsafe_code, reason = "this guest exists to perform an invalid read")]
fn main() {
    println!("about to read out of bounds");
    let ptr = std::ptr::with_exposed_provenance::<u8>(FAR_AWAY);
    // SAFETY: none. This read is deliberately invalid: on wasm32 the load is
    // bounds-checked by the engine and traps, which is the whole point of
    // this guest. `read_volatile` keeps the compiler from removing it.
    let byte = unsafe { std::ptr::read_volatile(ptr) };
    // Not reached on wasm32.
    println!("read {byte} out of bounds?!");
}
