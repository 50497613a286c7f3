//! `start-bind`: addresses in the pod's port table, on the host, or both (wildcards).

use std::net::SocketAddr;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket as RealTcp;
use wasmtime_wasi::p2::{SocketError, SocketResult};

use super::super::NetView;
use super::super::ports::{PortError, PortLease};
use super::super::socket::{Op, Options, Route, State, TcpSocket, check_local};
use super::real::{borrow, is};

/// How many ephemeral ports a wildcard bind to port 0 tries before giving up: each must be free
/// both in the pod and on the host.
const EPHEMERAL_TRIES: usize = 16;

fn port_error(error: PortError) -> SocketError {
    match error {
        PortError::InUse | PortError::Exhausted => ErrorCode::AddressInUse.into(),
        PortError::Closed => ErrorCode::InvalidState.into(),
    }
}

impl NetView<'_> {
    /// `start-bind`.
    pub(super) async fn bind_socket(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        if let Some(lent) = self.lend(&this)? {
            let started =
                RealTcp::start_bind(&mut self.host(), lent.handle(), network, local_address).await;
            self.give_back(&this, lent)?;
            return started;
        }
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        if !matches!(socket.state, State::Unbound) {
            return Err(ErrorCode::InvalidState.into());
        }
        let addr = SocketAddr::from(local_address);
        check_local(addr, socket.family)?;
        let (family, options) = (socket.family, socket.options.clone());
        let state = match Route::of(addr.ip(), self.net.config().virtual_loopback) {
            Route::Pod => State::Bound {
                lease: self.reserve(addr)?,
                host: None,
            },
            Route::Both => self.bind_both(family, &options, &network, addr).await?,
            Route::Host => {
                let handle = self.host_socket(family, &options)?;
                let started =
                    RealTcp::start_bind(&mut self.host(), borrow(&handle), network, addr.into())
                        .await;
                let real = self.table.delete(handle)?;
                started?;
                // wasmtime-wasi's socket now tracks the bind in progress.
                self.table.get_mut(&this)?.state = State::Host {
                    socket: Some(real),
                    lease: None,
                };
                return Ok(());
            }
        };
        let socket = self.table.get_mut(&this)?;
        socket.state = state;
        socket.in_progress = Some(Op::Bind);
        Ok(())
    }

    pub(super) fn reserve(&self, addr: SocketAddr) -> SocketResult<PortLease> {
        self.net.ports().reserve(addr).map_err(port_error)
    }

    /// A wildcard bind: the port in the pod, and the same port on a real socket (port 0 tries
    /// ephemeral ports until one is free in both). Only a conflict on the host is the guest's
    /// error; when the host refuses otherwise (privileged port, no IPv6), the socket stays in
    /// the pod.
    async fn bind_both(
        &mut self,
        family: IpAddressFamily,
        options: &Options,
        network: &Resource<Network>,
        addr: SocketAddr,
    ) -> SocketResult<State> {
        for _ in 0..EPHEMERAL_TRIES {
            let lease = self.reserve(addr)?;
            match self.bind_host(family, options, network, lease.addr()).await {
                Ok(real) => {
                    return Ok(State::Bound {
                        lease,
                        host: Some(real),
                    });
                }
                Err(e) if is(&e, ErrorCode::AddressInUse) && addr.port() == 0 => {}
                Err(e) if e.downcast_ref().is_none() || is(&e, ErrorCode::AddressInUse) => {
                    return Err(e);
                }
                Err(error) => {
                    tracing::warn!(
                        addr = %lease.addr(),
                        %error,
                        "wildcard listener serves the pod only: the host refused the address"
                    );
                    return Ok(State::Bound { lease, host: None });
                }
            }
        }
        Err(ErrorCode::AddressInUse.into())
    }
}
