//! Kubectl-style field paths, and the errors that name them.

use std::fmt;

use crate::spec::SpecError;

/// A kubectl-style field path: `spec.containers[0].resources.limits[nvidia.com/gpu]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FieldPath(String);

impl FieldPath {
    /// A top-level field.
    pub(super) fn root(name: &str) -> FieldPath {
        FieldPath(name.to_string())
    }

    /// The child field `name` (a JSON field name, or a dotted chain of them).
    pub(super) fn field(&self, name: &str) -> FieldPath {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The element `index` of a list.
    pub(super) fn index(&self, index: usize) -> FieldPath {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The entry `key` of a map: `.key` when it reads as a field name, else `[key]`, quoted and
    /// escaped (`["a\nb"]`) when it holds control characters, so an error stays one line.
    pub(super) fn key(&self, key: &str) -> FieldPath {
        let plain = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            self.field(key)
        } else if key.chars().any(char::is_control) {
            FieldPath(format!("{}[{key:?}]", self.0))
        } else {
            FieldPath(format!("{}[{key}]", self.0))
        }
    }

    /// An error at this path.
    pub(super) fn error(&self, message: impl Into<String>) -> SpecError {
        SpecError::new(self.0.clone(), message)
    }

    /// `<path>: not supported by wasmpod`.
    pub(super) fn unsupported(&self) -> SpecError {
        self.error("not supported by wasmpod")
    }

    /// `<path>: required value`.
    pub(super) fn required(&self) -> SpecError {
        self.error("required value")
    }

    /// `<path>: unsupported value "<value>": supported values are "<a>", "<b>"`.
    pub(super) fn unsupported_value(&self, value: &str, supported: &[&str]) -> SpecError {
        let supported = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.error(format!(
            "unsupported value {value:?}: supported values are {supported}"
        ))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths() {
        let p = FieldPath::root("spec").field("containers").index(2);
        assert_eq!(p.to_string(), "spec.containers[2]");
        assert_eq!(p.key("memory").to_string(), "spec.containers[2].memory");
        assert_eq!(
            p.key("nvidia.com/gpu").to_string(),
            "spec.containers[2][nvidia.com/gpu]"
        );
        assert_eq!(FieldPath::default().field("kind").to_string(), "kind");
        assert_eq!(FieldPath::default().key("a-b").to_string(), "[a-b]");
    }

    #[test]
    fn keys_with_control_characters_are_escaped() {
        // Caught by the manifest fuzz target's one-line invariant (inputs kept as
        // fuzz/corpus/manifest/multiline-*): an unknown or unsupported map key with a newline
        // made a two-line error.
        let p = FieldPath::root("metadata");
        assert_eq!(p.key("a\nb").to_string(), r#"metadata["a\nb"]"#);
        assert_eq!(p.key("a\rb/c").to_string(), r#"metadata["a\rb/c"]"#);
    }

    #[test]
    fn unsupported_value_lists_the_choices() {
        let e = FieldPath::root("medium").unsupported_value("Disk", &["", "Memory"]);
        assert_eq!(
            e.to_string(),
            "medium: unsupported value \"Disk\": supported values are \"\", \"Memory\""
        );
    }
}
