//! The `net` benchmark runs every case end to end (a few round trips and a small stream; no
//! timing checked).

use std::process::Command;

#[test]
fn net_bench_runs_every_case() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-net"))
        .args(["--rounds", "200", "--bytes", "4194304", "--bulk-runs", "1"])
        .output()
        .expect("run the net benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for case in [
        "wasm ↔ wasm, virtual loopback",
        "wasm ↔ wasm, kernel loopback",
        "native ↔ native processes, kernel",
        "virtual p50 round trip",
        "virtual throughput",
    ] {
        assert!(stdout.contains(case), "{case} missing from:\n{stdout}");
    }
}
