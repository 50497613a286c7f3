//! The shim's bundle reader: a bundle's `config.json` (an OCI runtime spec) → a sandbox or
//! container request; and `linux.cgroupsPath` → where the pod's cgroup goes.
//!
//! Invariants: no panic; a cgroup location stays beneath the cgroup2 mount (a relative parent
//! of plain components, a name that is one plain component).

#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;
use wasmpod_shim::bundle;

fn check_cgroup_location(cgroups_path: &str) {
    let Some((parent, name)) = bundle::cgroup_location(cgroups_path) else {
        return;
    };
    assert!(
        parent
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "{cgroups_path:?}: cgroup parent {parent:?} leaves the cgroup2 mount"
    );
    assert!(
        Path::new(&name).file_name() == Some(name.as_ref()),
        "{cgroups_path:?}: cgroup name {name:?} is not one path component"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_cgroup_location(text);
    }
    let Ok(spec) = serde_json::from_slice::<Spec>(data) else {
        return;
    };
    let _ = bundle::parse("fuzz-task", Path::new("/nonexistent/fuzz-bundle"), &spec);
    if let Some(path) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    {
        check_cgroup_location(&path.to_string_lossy());
    }
});
