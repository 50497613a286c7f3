//! What each container's `Store` holds, and the narrow views wasmtime-wasi gets of it.

use std::sync::Arc;

use wasmtime_wasi::p1::WasiP1Ctx;

use super::limits::{Limiter, Throttle, Usage};
use wasmtime_wasi::{WasiCtxView, WasiView};

/// The data of one container's store.
///
/// `WasiP1Ctx` wraps the WASI context and resource table and adds the preview1 adapter state,
/// so one type serves both kinds of guests: core modules link preview1 against it, components
/// link preview2 through its [`WasiView`].
pub struct StoreData {
    pub(crate) wasi: WasiP1Ctx,
    /// Memory and tables against the container's limit.
    pub(crate) limiter: Limiter,
    /// Shared with whoever reports the container's usage.
    pub(crate) usage: Arc<Usage>,
    /// While the container has a CPU limit (made at the first epoch tick under one, dropped
    /// when a resize lifts it).
    pub(crate) throttle: Option<Throttle>,
    /// The container's handle to its pod's network.
    pub(crate) net: crate::net::ContainerNet,
    /// `wasi:http` state: limits of its fields.
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    /// Where its outgoing HTTP requests go.
    pub(crate) http_hooks: super::outgoing::PodHttp,
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

impl wasmtime_wasi_http::WasiHttpView for StoreData {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: self.wasi.ctx().table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl crate::net::NetworkView for StoreData {
    fn network(&mut self) -> crate::net::NetView<'_> {
        let wasmtime_wasi::sockets::WasiSocketsCtxView { ctx, table } =
            wasmtime_wasi::sockets::WasiSocketsView::sockets(&mut self.wasi);
        crate::net::NetView {
            table,
            wasi: ctx,
            net: &self.net,
        }
    }
}
