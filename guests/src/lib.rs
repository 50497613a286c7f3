//! Guest programs for wasmpod's tests and examples, and where to find them.
//!
//! The guests are small Rust `std` programs (no WASI crates) in
//! `guests/programs/src/bin/`, one file per guest: `hello`, `exit`, `env`,
//! `write`, `cat`, `sleep`, `stderr`, and misbehaving ones (`trap`, `panic`,
//! `oob`, `stackoverflow`, `spin`, `membomb`). Each file's module docs say
//! what it does and how it uses its arguments. The networking guests
//! (`http-server`, `http-get`, `tcp`, `bulk`) need sockets, so only their
//! wasm32-wasip2 builds are useful.
//!
//! This crate's build script builds them all with a nested
//! `cargo build --release --target wasm32-wasip1 --target wasm32-wasip2` into
//! `<workspace>/target/guests` (`$CARGO_TARGET_DIR/guests` if that variable is
//! set), so every guest `NAME` exists as
//!
//! - `target/guests/wasm32-wasip1/release/NAME.wasm`, a WASI preview 1 core
//!   module, whose absolute path is the constant `NAME_P1`, and
//! - `target/guests/wasm32-wasip2/release/NAME.wasm`, a WASI 0.2 component
//!   (rustc emits components for that target), at `NAME_P2`,
//!
//! where `NAME` is the binary name in upper snake case (e.g. [`HELLO_P1`]).
//! [`ALL`] lists every guest. The paths are stable, so manifests in
//! `examples/` can refer to them relative to the repository.
//!
//! # Adding a guest
//!
//! Add `guests/programs/src/bin/NAME.rs` with a `//!` doc comment (its first
//! line becomes part of the constants' docs) and a `main`. The next build of
//! this crate builds it and generates `NAME_P1` and `NAME_P2`. Keep guests
//! dependency-free and check them with
//! `cargo clippy --manifest-path guests/programs/Cargo.toml --target wasm32-wasip1`.
//!
//! If `target/guests` is deleted by hand (rather than by `cargo clean`), touch
//! `guests/programs/Cargo.toml` to have it rebuilt.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
