//! A compiled guest, ready to instantiate: a core module (wasip1 command) or a component
//! (wasip2 command), pre-linked so each start only allocates and initialises.

use std::path::Path;

use wasmtime::component::Component;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::{ImageError, ImageKind, StoreData};

/// A compiled, pre-linked guest. Cheap to clone.
#[derive(Clone)]
pub enum Image {
    /// A wasip1 command module.
    Module(wasmtime::InstancePre<StoreData>),
    /// A wasip2 command component.
    Component(CommandPre<StoreData>),
    /// A `wasi:http` service: a component exporting `wasi:http/incoming-handler`, instantiated
    /// once per request. (It is served even if it also exports `wasi:cli/run`, as
    /// `wasmtime serve` serves it.)
    Service(ProxyPre<StoreData>),
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
            Image::Component(_) | Image::Service(_) => ImageKind::Component,
        }
    }

    /// Whether this is a `wasi:http` service.
    pub fn is_service(&self) -> bool {
        matches!(self, Image::Service(_))
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
            .map_err(|e| compile_error(path, &e))?;
        if let Ok(service) = ProxyPre::new(pre.clone()) {
            return Ok(Image::Service(service));
        }
        let command = CommandPre::new(pre).map_err(|e| {
            compile_error(
                path,
                &e.context(
                    "a component must export `wasi:cli/run` (a command) \
                     or `wasi:http/incoming-handler` (a service)",
                ),
            )
        })?;
        Ok(Image::Component(command))
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
