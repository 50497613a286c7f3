//! Names and identifiers: DNS-1123 names, generated uids and `generateName` suffixes.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::field_path::FieldPath;
use super::policy::check_unique;
use crate::spec::SpecError;

/// The longest DNS-1123 label.
pub(super) const MAX_LABEL: usize = 63;
/// The longest DNS-1123 subdomain.
const MAX_SUBDOMAIN: usize = 253;

/// Whether `s` is `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (length not checked).
fn is_label_text(s: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(alphanumeric)
        && s.ends_with(alphanumeric)
        && s.chars().all(|c| alphanumeric(c) || c == '-')
}

/// A name that must be set and satisfy `valid`: else `invalid value "<name>": must <rule>`.
pub(super) fn check_name(
    name: &str,
    p: &FieldPath,
    valid: impl FnOnce(&str) -> bool,
    rule: &str,
) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(p.required());
    }
    if valid(name) {
        Ok(())
    } else {
        Err(p.error(format!("invalid value {name:?}: must {rule}")))
    }
}

/// A DNS-1123 label: container, volume and namespace names, hostnames.
pub(super) fn check_dns_label(name: &str, p: &FieldPath) -> Result<(), SpecError> {
    check_name(
        name,
        p,
        |name| name.len() <= MAX_LABEL && is_label_text(name),
        "be a dns-1123 label (at most 63 lowercase letters, digits and '-', starting and \
         ending with a letter or digit)",
    )
}

/// A pod's `metadata.uid`: it names the pod's directory on the host, so it is one plain path
/// component. The API server writes a UUID; any ASCII letters, digits, `-` and `_` up to 128
/// are accepted, and nothing that could be `..` or hold a `/`.
pub(super) fn check_uid(uid: &str, p: &FieldPath) -> Result<(), SpecError> {
    check_name(
        uid,
        p,
        |uid| {
            uid.len() <= 128
                && uid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        },
        "be at most 128 ASCII letters, digits, '-' and '_' (a UUID)",
    )
}

/// A DNS-1123 subdomain: pod names.
pub(super) fn check_dns_subdomain(name: &str, p: &FieldPath) -> Result<(), SpecError> {
    check_name(
        name,
        p,
        |name| name.len() <= MAX_SUBDOMAIN && name.split('.').all(is_label_text),
        "be a dns-1123 subdomain (at most 253 lowercase letters, digits, '-' and '.', \
         starting and ending with a letter or digit)",
    )
}

/// The `name` of the list element at `p` (a volume or container): a DNS-1123 label not in
/// `seen`, where it is then recorded; a repeat is `duplicate <what> "<name>"`.
pub(super) fn check_element_name(
    name: &str,
    p: &FieldPath,
    seen: &mut HashSet<String>,
    what: &str,
) -> Result<(), SpecError> {
    let name_path = p.field("name");
    check_dns_label(name, &name_path)?;
    check_unique(seen, name, &name_path, what)
}

/// 64 unpredictable bits: a per-process random hash key over the time, pid and a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    RandomState::new().hash_one((nanos, std::process::id(), count))
}

/// A random version-4 UUID, for pods without `metadata.uid`.
pub(super) fn generate_uid() -> String {
    let bits = (u128::from(random_u64()) << 64) | u128::from(random_u64());
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Five random characters from the alphabet Kubernetes uses for `generateName`.
pub(super) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = random_u64();
    (0..5)
        .map(|_| {
            let len = ALPHABET.len() as u64;
            let c = ALPHABET[usize::try_from(bits % len).unwrap_or(0)];
            bits /= len;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse::test_support::assert_uuid;

    #[test]
    fn generated_uids_are_unique_uuids() {
        let a = generate_uid();
        let b = generate_uid();
        assert_uuid(&a);
        assert_uuid(&b);
        assert_ne!(a, b);
    }
}
