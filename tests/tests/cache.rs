//! The compile cache across runs: a second run hits it; a corrupted entry is recompiled.

use wasmpod_guests as guests;
use wasmpod_tests::Wasmpod;

fn hello_pod() -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: cached}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: p1\n    image: {}\n  - name: p2\n    image: {}\n",
        guests::HELLO_P1,
        guests::HELLO_P2
    )
}

fn run_verbose(wasmpod: &Wasmpod) -> wasmpod_tests::Outcome {
    let path = wasmpod.manifest("pod.yaml", &hello_pod());
    let out = wasmpod.cmd(&["run", "-v", path.to_str().expect("utf-8")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines_of("p1"), vec!["hello from wasm"]);
    assert_eq!(out.lines_of("p2"), vec!["hello from wasm"]);
    out
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn second_run_hits_the_cache_and_a_corrupt_entry_is_recompiled() {
    let wasmpod = Wasmpod::new();
    let first = run_verbose(&wasmpod);
    assert_eq!(
        count(&first.stderr, "compile cache miss"),
        2,
        "{}",
        first.stderr
    );
    assert_eq!(count(&first.stderr, "compile cache hit"), 0);

    let second = run_verbose(&wasmpod);
    assert_eq!(
        count(&second.stderr, "compile cache hit"),
        2,
        "{}",
        second.stderr
    );
    assert_eq!(count(&second.stderr, "compile cache miss"), 0);

    // Flip bytes in the middle of every artifact: the digest no longer matches.
    let artifacts: Vec<_> = std::fs::read_dir(wasmpod.cache_dir())
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 2, "one entry per module: {artifacts:?}");
    for artifact in &artifacts {
        let mut bytes = std::fs::read(artifact).expect("read artifact");
        let middle = bytes.len() / 2;
        for b in &mut bytes[middle..middle + 64] {
            *b ^= 0xff;
        }
        std::fs::write(artifact, bytes).expect("corrupt artifact");
    }
    let third = run_verbose(&wasmpod);
    assert_eq!(
        count(&third.stderr, "compile cache entry rejected"),
        2,
        "{}",
        third.stderr
    );
    assert_eq!(count(&third.stderr, "compile cache hit"), 0);

    // The rewritten entries are good again.
    let fourth = run_verbose(&wasmpod);
    assert_eq!(
        count(&fourth.stderr, "compile cache hit"),
        2,
        "{}",
        fourth.stderr
    );
}

#[test]
fn compile_fills_the_cache_before_any_run() {
    let wasmpod = Wasmpod::new();
    let out = wasmpod.cmd(&["compile", guests::HELLO_P1, guests::HELLO_P2]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("module compiled") && out.stdout.contains("component compiled"));
    let run = run_verbose(&wasmpod);
    assert_eq!(count(&run.stderr, "compile cache hit"), 2, "{}", run.stderr);

    let bad = wasmpod.cmd(&["compile", "/nonexistent.wasm"]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}
