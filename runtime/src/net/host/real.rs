//! Handing sockets to wasmtime-wasi: its view, delegation, and real sockets made with the
//! guest's options.

use std::net::SocketAddr;

use wasmtime::component::{Resource, ResourceTableError};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket as RealTcp;
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as RealCreate;
use wasmtime_wasi::p2::{SocketError, SocketResult};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use super::super::socket::{Options, RealSocket, State, TcpSocket};
use super::super::{ContainerNet, NetView};

/// A new borrowed handle to the same resource.
pub(super) fn borrow<T: 'static>(resource: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(resource.rep())
}

/// A real socket lent to the resource table for one call.
pub(super) struct Lent {
    handle: Resource<RealSocket>,
    /// Moved there from our socket (and to be moved back), rather than living there.
    moved: bool,
}

impl Lent {
    /// The socket's handle for the call.
    pub(super) fn handle(&self) -> Resource<RealSocket> {
        borrow(&self.handle)
    }
}

/// Whether `error` is the guest-visible `code`.
pub(super) fn is(error: &SocketError, code: ErrorCode) -> bool {
    error.downcast_ref() == Some(&code)
}

impl NetView<'_> {
    /// wasmtime-wasi's view, for its real sockets.
    pub(super) fn host(&mut self) -> WasiSocketsCtxView<'_> {
        WasiSocketsCtxView {
            ctx: self.wasi,
            table: self.table,
        }
    }

    /// Delegates to the real socket if `this` was handed to wasmtime-wasi, else runs `local`.
    pub(super) fn either<R>(
        &mut self,
        this: &Resource<TcpSocket>,
        real: impl FnOnce(&mut WasiSocketsCtxView<'_>, Resource<RealSocket>) -> SocketResult<R>,
        local: impl FnOnce(&mut TcpSocket, &ContainerNet) -> SocketResult<R>,
    ) -> SocketResult<R> {
        match self.lend(this)? {
            Some(lent) => {
                let result = real(&mut self.host(), lent.handle());
                self.give_back(this, lent)?;
                result
            }
            None => local(self.table.get_mut(this)?, self.net),
        }
    }

    /// The real socket of `this` in the resource table for a call, if `this` was handed to
    /// wasmtime-wasi: a connected one is there already, an unconnected one is moved there.
    /// Every lent socket is handed back with [`NetView::give_back`].
    pub(super) fn lend(&mut self, this: &Resource<TcpSocket>) -> SocketResult<Option<Lent>> {
        let socket = self.table.get_mut(this)?;
        match &mut socket.state {
            State::Real { handle, .. } => Ok(Some(Lent {
                handle: borrow(handle),
                moved: false,
            })),
            State::Host { socket, .. } => {
                let real = socket.take().ok_or(ErrorCode::ConcurrencyConflict)?;
                let handle = self.table.push(real)?;
                Ok(Some(Lent {
                    handle,
                    moved: true,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Moves a lent socket back into `this`; one the call connected (it now has streams, its
    /// children in the table) stays in the table, and `this` becomes connected.
    pub(super) fn give_back(&mut self, this: &Resource<TcpSocket>, lent: Lent) -> SocketResult<()> {
        if !lent.moved {
            return Ok(());
        }
        let rep = lent.handle.rep();
        let returned = match self.table.delete(lent.handle) {
            Ok(real) => Some(real),
            Err(ResourceTableError::HasChildren) => None,
            Err(e) => return Err(e.into()),
        };
        let socket = self.table.get_mut(this)?;
        match (&mut socket.state, returned) {
            (State::Host { socket, .. }, Some(real)) => *socket = Some(real),
            (State::Host { lease, .. }, None) => {
                let lease = lease.take();
                socket.state = State::Real {
                    handle: Resource::new_own(rep),
                    _lease: lease,
                };
            }
            _ => {}
        }
        Ok(())
    }

    /// A real socket of `family` with the guest's options applied (as hints: one the host
    /// refuses is not the guest's error).
    pub(super) fn host_socket(
        &mut self,
        family: IpAddressFamily,
        options: &Options,
    ) -> SocketResult<Resource<RealSocket>> {
        let mut host = self.host();
        let handle = RealCreate::create_tcp_socket(&mut host, family)?;
        let h = || borrow(&handle);
        let applied = [
            options
                .keep_alive
                .map(|v| RealTcp::set_keep_alive_enabled(&mut host, h(), v)),
            options
                .keep_alive_idle
                .map(|v| RealTcp::set_keep_alive_idle_time(&mut host, h(), v)),
            options
                .keep_alive_interval
                .map(|v| RealTcp::set_keep_alive_interval(&mut host, h(), v)),
            options
                .keep_alive_count
                .map(|v| RealTcp::set_keep_alive_count(&mut host, h(), v)),
            options
                .hop_limit
                .map(|v| RealTcp::set_hop_limit(&mut host, h(), v)),
            options
                .receive_buffer
                .map(|v| RealTcp::set_receive_buffer_size(&mut host, h(), v)),
            options
                .send_buffer
                .map(|v| RealTcp::set_send_buffer_size(&mut host, h(), v)),
            options
                .backlog
                .map(|v| RealTcp::set_listen_backlog_size(&mut host, h(), v)),
        ];
        for error in applied.into_iter().flatten().filter_map(Result::err) {
            tracing::debug!(%error, "socket option not applied to the host socket");
        }
        Ok(handle)
    }

    /// A real socket of `family` bound to `addr`.
    pub(super) async fn bind_host(
        &mut self,
        family: IpAddressFamily,
        options: &Options,
        network: &Resource<Network>,
        addr: SocketAddr,
    ) -> SocketResult<RealSocket> {
        let handle = self.host_socket(family, options)?;
        let mut host = self.host();
        let bound =
            match RealTcp::start_bind(&mut host, borrow(&handle), borrow(network), addr.into())
                .await
            {
                Ok(()) => RealTcp::finish_bind(&mut host, borrow(&handle)),
                Err(e) => Err(e),
            };
        let real = self.table.delete(handle)?;
        bound.map(|()| real)
    }
}
