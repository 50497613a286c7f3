//! What to do with a field wasmpod does not convert: ignore it (logged at debug) or reject it;
//! and the small checks every converter shares.

use std::collections::{BTreeMap, HashSet};

use super::field_path::FieldPath;
use crate::spec::SpecError;

/// Ignored: only the scheduler or the API server acts on the field.
pub(super) const SCHEDULER: &str = "ignored: only the scheduler or API server acts on it";
/// Ignored: WebAssembly guests have no uids, gids or capabilities.
pub(super) const NO_USERS: &str =
    "ignored: webassembly guests have no users, groups or capabilities";
/// Ignored: the WebAssembly sandbox already confines the guest more than this would.
pub(super) const SANDBOXED: &str = "ignored: the webassembly sandbox already confines the guest";
/// Ignored: images are local `.wasm` files and the kubelet's bookkeeping does not apply.
pub(super) const NOT_APPLICABLE: &str = "ignored: does not apply to webassembly modules";

/// Logs, at debug, each of `fields` (children of `base`) that is set.
pub(super) fn ignore_fields(base: &FieldPath, reason: &str, fields: &[(&str, bool)]) {
    for &(name, set) in fields {
        if set {
            tracing::debug!(field = %base.field(name), "{reason}");
        }
    }
}

/// The first of `fields` (children of `base`) that is set, as a `not supported` error.
pub(super) fn reject_fields(base: &FieldPath, fields: &[(&str, bool)]) -> Result<(), SpecError> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(base.field(name).unsupported()),
        None => Ok(()),
    }
}

/// Whether a list field holds at least one element.
pub(super) fn nonempty<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

/// Whether a map field holds at least one entry.
pub(super) fn nonempty_map<K, V>(map: &Option<BTreeMap<K, V>>) -> bool {
    map.as_ref().is_some_and(|m| !m.is_empty())
}

/// Whether a string field is set to something other than `""`.
pub(super) fn nonempty_str(s: &Option<String>) -> bool {
    s.as_ref().is_some_and(|s| !s.is_empty())
}

/// `Some(s)` unless `s` is missing or `""` (Kubernetes treats both as unset).
pub(super) fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Whether a boolean field is explicitly `true`.
pub(super) fn is_true(b: Option<bool>) -> bool {
    b == Some(true)
}

/// Whether a string field is set to something other than its harmless `default`.
pub(super) fn differs_from(s: &Option<String>, default: &str) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty() && s != default)
}

/// Converts each element of the list at `p` with `convert`, which gets the element's path.
pub(super) fn convert_list<T, U>(
    items: Vec<T>,
    p: &FieldPath,
    mut convert: impl FnMut(T, &FieldPath) -> Result<U, SpecError>,
) -> Result<Vec<U>, SpecError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item, &p.index(i)))
        .collect()
}

/// Records `value` in `seen`; a value seen before is `<p>: duplicate <what> "<value>"`.
pub(super) fn check_unique(
    seen: &mut HashSet<String>,
    value: &str,
    p: &FieldPath,
    what: &str,
) -> Result<(), SpecError> {
    if seen.insert(value.to_string()) {
        Ok(())
    } else {
        Err(p.error(format!("duplicate {what} {value:?}")))
    }
}

/// `workingDir` or `mountPath`, which must be an absolute guest path.
pub(super) fn absolute_guest_path(path: String, p: &FieldPath) -> Result<String, SpecError> {
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(p.error("must be an absolute path"))
    }
}
