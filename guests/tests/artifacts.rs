//! Checks that every generated path points at a wasm binary of the right kind.
//! Running the guests is the runtime's tests' job.

use std::path::Path;

const MAGIC: &[u8] = b"\0asm";
/// Version and layer of a core module: version 1, layer 0.
const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// Version and layer of a component: version 0x0d, layer 1.
const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

fn header(path: &str) -> [u8; 8] {
    assert!(Path::new(path).is_absolute(), "{path} is not absolute");
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!("cannot read {path}: {e} (if target/guests was deleted, touch guests/programs/Cargo.toml)")
    });
    assert!(
        bytes.len() >= 8,
        "{path} is only {} bytes long",
        bytes.len()
    );
    assert_eq!(
        &bytes[..4],
        MAGIC,
        "{path} does not start with the wasm magic"
    );
    let mut header = [0; 8];
    header.copy_from_slice(&bytes[..8]);
    header
}

#[test]
fn p1_guests_are_core_modules() {
    for (name, p1, _) in wasmpod_guests::ALL {
        assert!(p1.contains("wasm32-wasip1"), "{name}: {p1}");
        assert_eq!(
            header(p1)[4..],
            CORE_MODULE,
            "{name}: {p1} is not a core module"
        );
    }
}

#[test]
fn p2_guests_are_components() {
    for (name, _, p2) in wasmpod_guests::ALL {
        assert!(p2.contains("wasm32-wasip2"), "{name}: {p2}");
        assert_eq!(
            header(p2)[4..],
            COMPONENT,
            "{name}: {p2} is not a component"
        );
    }
}

#[test]
fn all_guests_are_listed() {
    let names: Vec<&str> = wasmpod_guests::ALL
        .iter()
        .map(|(name, _, _)| *name)
        .collect();
    let expected = [
        "cat",
        "env",
        "exit",
        "hello",
        "membomb",
        "oob",
        "panic",
        "sleep",
        "spin",
        "stackoverflow",
        "stderr",
        "trap",
        "write",
    ];
    for name in expected {
        assert!(
            names.contains(&name),
            "guest {name} is missing from ALL: {names:?}"
        );
    }
    assert!(names.is_sorted(), "ALL is not sorted: {names:?}");
    assert!(wasmpod_guests::ALL.contains(&(
        "hello",
        wasmpod_guests::HELLO_P1,
        wasmpod_guests::HELLO_P2
    )));
    assert!(wasmpod_guests::HELLO_P1.ends_with("/guests/wasm32-wasip1/release/hello.wasm"));
    assert!(wasmpod_guests::HELLO_P2.ends_with("/guests/wasm32-wasip2/release/hello.wasm"));
}
