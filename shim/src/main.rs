//! `containerd-shim-wasmpod-v1`: containerd's runtime `io.containerd.wasmpod.v1`. The library
//! owns the bootstrap; see [`wasmpod_shim`].

fn main() {
    wasmpod_shim::run();
}
