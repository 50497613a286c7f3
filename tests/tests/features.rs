//! The Wasm proposals the wasmtime CLI of the same version enables by default are on in
//! wasmpod (README: "WebAssembly features"): modules using them run as pod containers, and a
//! module that needs a proposal that is off is refused with the proposal named.

use std::path::{Path, PathBuf};

use wasmpod_tests::{Wasmpod, terminated};

/// `tests/wat/NAME.wat` compiled to a binary module in `dir`.
fn module(dir: &Path, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wat")
        .join(format!("{name}.wat"));
    let binary = wat::parse_file(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, binary).expect("write module");
    path
}

fn pod(name: &str, image: &Path) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  \
         containers:\n  - name: app\n    image: {}\n",
        image.display()
    )
}

#[test]
fn a_guest_throws_and_catches_a_wasm_exception_and_uses_a_gc_struct() {
    let wasmpod = Wasmpod::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = module(dir.path(), "exceptions-gc");
    let out = wasmpod.run_json(&pod("exceptions", &image), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines_of("app"), vec!["caught 4 point 7"]);
    assert_eq!(terminated(&out.json(), "app"), (0, "Completed".into()));
}

#[test]
fn simd_relaxed_simd_multi_memory_memory64_extended_const_and_atomics_are_on() {
    let wasmpod = Wasmpod::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = module(dir.path(), "proposals");
    let out = wasmpod.run_json(&pod("proposals", &image), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.lines_of("app"),
        vec!["simd 6 relaxed 5 memory64 9 const 8 atomics 3"]
    );
}

#[test]
fn a_module_needing_a_proposal_that_is_off_is_refused_naming_it() {
    // Custom page sizes are off in the wasmtime CLI's defaults, and so in wasmpod's.
    let wasmpod = Wasmpod::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("pagesize.wasm");
    let binary = wat::parse_str(r#"(module (memory 1 (pagesize 1)) (func (export "_start")))"#)
        .expect("wat");
    std::fs::write(&image, binary).expect("write");
    let out = wasmpod.run_json(&pod("pagesize", &image), &[]);
    assert_eq!(out.code, 2, "bad input: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("spec.containers[0].image") && out.stderr.contains("page size"),
        "{}",
        out.stderr
    );
    assert!(
        wasmpod.state_entries().is_empty(),
        "something was left behind"
    );
}

#[test]
fn a_gc_heap_is_held_to_the_container_memory_limit_and_the_neighbour_lives_on() {
    let wasmpod = Wasmpod::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let hog = module(dir.path(), "gc-hog");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: gc-hog}}\nspec:\n  restartPolicy: Never\n  \
         containers:\n  - name: hog\n    image: {}\n    resources: {{limits: {{memory: 32Mi}}}}\n  \
         - name: neighbour\n    image: {}\n",
        hog.display(),
        module(dir.path(), "exceptions-gc").display()
    );
    let out = wasmpod.run_json(&manifest, &[]);
    let status = out.json();
    assert_eq!(
        terminated(&status, "hog"),
        (137, "OOMKilled".into()),
        "{}",
        out.stderr
    );
    assert_eq!(out.lines_of("neighbour"), vec!["caught 4 point 7"]);
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
}
