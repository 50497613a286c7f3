//! The pod manifest parser: YAML or JSON text → `PodSpec`.
//!
//! Invariants: no panic; an error renders to exactly one line (it is printed as
//! `error: <path>: <message>` by the CLI and becomes a container's status message).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match wasmpod::spec::parse_pod(text, Path::new("/fuzz/manifests")) {
        Ok(spec) => {
            // Every part of the spec is reachable (no lazily failing fields).
            let _ = format!("{spec:?}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                !message.contains('\n') && !message.contains('\r'),
                "an error of more than one line: {message:?}"
            );
        }
    }
});
