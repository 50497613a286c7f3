//! What a WebAssembly binary is, told from its first bytes alone.
//!
//! A leaf: both the [`engine`](crate::engine) (which compiles guests) and [`oci`](crate::oci)
//! (which packs them into images) ask it, and it asks neither.

/// The two kinds of guests wasmpod runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// A core module exporting `_start` (wasip1).
    Module,
    /// A component exporting `wasi:cli/run` (wasip2).
    Component,
}

impl ImageKind {
    /// Tells the kind from the binary's preamble: `\0asm` then a version/layer word, `1 0 0 0`
    /// for core modules and `0x0d 0 1 0` for components. `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<ImageKind> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', _, _, 0, 0]) => Some(ImageKind::Module),
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => Some(ImageKind::Component),
            _ => None,
        }
    }

    /// `"module"` or `"component"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Module => "module",
            ImageKind::Component => "component",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds_and_refuses_other_bytes() {
        assert_eq!(
            ImageKind::detect(b"\0asm\x01\0\0\0rest"),
            Some(ImageKind::Module)
        );
        assert_eq!(
            ImageKind::detect(b"\0asm\x0d\0\x01\0rest"),
            Some(ImageKind::Component)
        );
        assert_eq!(ImageKind::detect(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(ImageKind::detect(b"\0as"), None);
    }
}
