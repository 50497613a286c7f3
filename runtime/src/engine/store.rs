//! What each container's `Store` holds, and the narrow views wasmtime-wasi gets of it.

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtxView, WasiView};

/// The data of one container's store.
///
/// `WasiP1Ctx` wraps the WASI context and resource table and adds the preview1 adapter state,
/// so one type serves both kinds of guests: core modules link preview1 against it, components
/// link preview2 through its [`WasiView`].
pub struct StoreData {
    pub(crate) wasi: WasiP1Ctx,
}

impl std::fmt::Debug for StoreData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreData").finish_non_exhaustive()
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}
