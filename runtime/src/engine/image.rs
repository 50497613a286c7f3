//! A compiled guest, ready to instantiate: a core module (wasip1 command) or a component
//! (wasip2 command), pre-linked so each start only allocates and initialises.

use std::path::Path;

use wasmtime::component::Component;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::{ImageError, StoreData};

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
    /// for core modules and `0x0d 0 1 0` for components.
    pub fn detect(bytes: &[u8], path: &Path) -> Result<ImageKind, ImageError> {
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', _, _, 0, 0]) => Ok(ImageKind::Module),
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(ImageKind::Component),
            _ => Err(ImageError::NotWasm {
                path: path.to_owned(),
            }),
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

/// A compiled, pre-linked guest. Cheap to clone.
#[derive(Clone)]
pub enum Image {
    /// A wasip1 command module.
    Module(wasmtime::InstancePre<StoreData>),
    /// A wasip2 command component.
    Component(CommandPre<StoreData>),
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Image").field(&self.kind()).finish()
    }
}

impl Image {
    /// Which kind of guest this is.
    pub fn kind(&self) -> ImageKind {
        match self {
            Image::Module(_) => ImageKind::Module,
            Image::Component(_) => ImageKind::Component,
        }
    }

    pub(crate) fn link_module(
        linker: &wasmtime::Linker<StoreData>,
        module: &wasmtime::Module,
        path: &Path,
    ) -> Result<Image, ImageError> {
        let pre = linker
            .instantiate_pre(module)
            .map_err(|e| compile_error(path, &e))?;
        Ok(Image::Module(pre))
    }

    pub(crate) fn link_component(
        linker: &wasmtime::component::Linker<StoreData>,
        component: &Component,
        path: &Path,
    ) -> Result<Image, ImageError> {
        let pre = linker
            .instantiate_pre(component)
            .and_then(CommandPre::new)
            .map_err(|e| compile_error(path, &e))?;
        Ok(Image::Component(pre))
    }
}

/// wasmtime's error chain, on one line.
pub(crate) fn compile_error(path: &Path, e: &wasmtime::Error) -> ImageError {
    ImageError::Compile {
        path: path.to_owned(),
        message: one_line(e),
    }
}

/// An error and its causes joined with `: `, newlines folded, as a one-line message.
pub(crate) fn one_line(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds_and_refuses_other_bytes() {
        let p = Path::new("x.wasm");
        assert_eq!(
            ImageKind::detect(b"\0asm\x01\0\0\0rest", p).ok(),
            Some(ImageKind::Module)
        );
        assert_eq!(
            ImageKind::detect(b"\0asm\x0d\0\x01\0rest", p).ok(),
            Some(ImageKind::Component)
        );
        assert!(matches!(
            ImageKind::detect(b"#!/bin/sh\necho hi\n", p),
            Err(ImageError::NotWasm { .. })
        ));
        assert!(ImageKind::detect(b"\0as", p).is_err());
    }
}
