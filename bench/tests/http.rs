//! The `http` benchmark runs its wasmpod cases end to end without the wasmtime CLI (a short
//! window each; no timing checked): the `wasmtime serve` case is skipped, not failed.

use std::process::Command;

#[test]
fn http_bench_runs_without_wasmtime() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-http"))
        .args([
            "--duration",
            "200ms",
            "--warmup",
            "50ms",
            "--connections",
            "2",
            "--wasmtime",
            "/nonexistent/wasmtime",
        ])
        .output()
        .expect("run the http benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "skipping the `wasmtime serve` case",
        "wasmpod, hyper client on TCP 127.0.0.1",
        "wasmpod, hyper client on the pod's loopback",
        "wasmpod, sibling container (http-load, 2 conn.)",
        "no `wasmtime serve` case",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert!(
        !stdout.contains("wasmtime serve 4"),
        "a wasmtime row without wasmtime:\n{stdout}"
    );
}
