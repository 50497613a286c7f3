//! The OCI image archive reader: a tar of an OCI image layout → the module it holds.
//!
//! Invariants: no panic, and nothing bigger than the archive comes out of it (a module is
//! bytes of the archive; an entry that expands beyond them is refused).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wasmpod::oci::is_tar(data);
    if let Ok(module) = wasmpod::oci::module_in_archive(data, Path::new("fuzz.tar")) {
        assert!(
            module.len() <= data.len(),
            "a {} byte module out of a {} byte archive",
            module.len(),
            data.len()
        );
    }
});
