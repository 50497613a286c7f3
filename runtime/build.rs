//! Builds wasmpod's toolbox (`toolbox/` at the repository root) for wasm32-wasip2 and copies
//! the component to `$OUT_DIR/toolbox.wasm`, which `src/toolbox.rs` embeds in the library.
//!
//! Modelled on `guests/build.rs`: a nested `cargo build --release` of a separate cargo project
//! into `<target-dir>/toolbox`, with the outer build's settings kept out of it. Unlike the
//! guests, the artifact is copied into `OUT_DIR`: the library embeds it, so nothing refers to
//! the nested target directory afterwards and deleting it only costs a rebuild.
//!
//! This script runs for every build of the library: the CLI, the shim, tests, benches, docs,
//! clippy, and the fuzz crate (whose sanitizer and coverage flags must not reach the nested
//! build).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolbox's only target: a component, so that it can use `wasi:sockets`.
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the runtime crate lives in a subdirectory of the workspace");
    let toolbox = workspace.join("toolbox");
    let toolbox_manifest = toolbox.join("Cargo.toml");

    // A directory is scanned recursively: new, changed and removed sources all count. The
    // lock file is committed and only read by the nested build (it has no dependencies to
    // resolve), so it can be watched too.
    println!("cargo:rerun-if-changed={}", toolbox.join("src").display());
    println!("cargo:rerun-if-changed={}", toolbox_manifest.display());
    println!(
        "cargo:rerun-if-changed={}",
        toolbox.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = toolbox_target_dir(workspace);
    build_toolbox(&toolbox_manifest, &target_dir);

    let artifact = target_dir.join(TARGET).join("release").join("toolbox.wasm");
    let embedded = out_dir.join("toolbox.wasm");
    fs::copy(&artifact, &embedded).unwrap_or_else(|e| {
        panic!(
            "the nested cargo build succeeded but {} cannot be copied to {}: {e}",
            artifact.display(),
            embedded.display()
        )
    });
}

/// `$CARGO_TARGET_DIR/toolbox` if that is set, else `<workspace>/target/toolbox`, as
/// `guests/build.rs` does for the guests (a relative `CARGO_TARGET_DIR` is taken relative to
/// the workspace root; `--target-dir` and `build.target-dir` are invisible to build scripts).
fn toolbox_target_dir(workspace: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir).join("toolbox"),
        _ => workspace.join("target").join("toolbox"),
    }
}

/// Runs the nested `cargo build` of the toolbox into `target_dir`, panicking with its output
/// if it fails.
fn build_toolbox(manifest: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);

    // Keep the outer build's settings out of the nested one (see guests/build.rs):
    // - rustflags are meant for the outer target: cargo always sets CARGO_ENCODED_RUSTFLAGS
    //   for build scripts, and `cargo fuzz` / `cargo llvm-cov` put sanitizer and coverage
    //   flags into RUSTFLAGS, which would not even compile for wasm;
    // - `cargo clippy` and `cargo fix` work through RUSTC_WORKSPACE_WRAPPER: inherited, it
    //   would lint the toolbox and change its fingerprint, so that `cargo build` and `cargo
    //   clippy` rebuilt it from scratch in turn;
    // - profile, target and unstable settings from the environment (CARGO_PROFILE_*,
    //   CARGO_BUILD_*, CARGO_TARGET_*, CARGO_UNSTABLE_*) are the outer build's; the toolbox's
    //   profile is in its own manifest and its target dir is given above.
    // CARGO_MAKEFLAGS is kept on purpose: the nested cargo joins the outer jobserver instead
    // of starting another NUM_CPUS jobs on top of it.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
    ] {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        let outer = [
            "CARGO_PROFILE_",
            "CARGO_BUILD_",
            "CARGO_TARGET_",
            "CARGO_UNSTABLE_",
        ]
        .iter()
        .any(|prefix| var.starts_with(prefix));
        if outer {
            cmd.env_remove(var);
        }
    }
    // Miri substitutes its own rustc and sysroot, which cannot build wasm.
    if env::var_os("CARGO_CFG_MIRI").is_some() {
        cmd.env_remove("RUSTC").env_remove("RUSTC_WRAPPER");
    }

    eprintln!("running: {cmd:?}");
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown by `cargo build -vv`, and kept in target/.../build/*/stderr.
    eprintln!("{stderr}");
    if !output.status.success() {
        let mut hint = "";
        if stderr.contains("target may not be installed") {
            hint = "\nhint: the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`";
        }
        panic!(
            "building wasmpod's toolbox failed ({}): {cmd:?}\n{}\n{stderr}{hint}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
        );
    }
}
