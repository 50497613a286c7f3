//! The host functions of `wasi:sockets/tcp` and `tcp-create-socket`: the pod's loopback served
//! here, everything else delegated to wasmtime-wasi's implementation. The lifecycle calls live
//! in one file each (`bind`, `connect`, `accept`: listen and accept), delegation in `real`.

mod accept;
mod bind;
mod connect;
mod real;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{
    HostTcpSocket as RealTcp, ShutdownType as RealShutdown,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult};

use super::NetView;
use super::bindings::tcp::{self, ShutdownType};
use super::bindings::tcp_create_socket;
use super::socket::{Op, Options, RealSocket, State, TcpSocket};

/// Defaults a virtual socket reports for options the guest did not set (Linux's).
const KEEP_ALIVE_IDLE_NS: u64 = 7200 * 1_000_000_000;
const KEEP_ALIVE_INTERVAL_NS: u64 = 75 * 1_000_000_000;
const KEEP_ALIVE_COUNT: u32 = 9;
const HOP_LIMIT: u8 = 64;

/// A connection's streams.
type Streams = (Resource<DynInputStream>, Resource<DynOutputStream>);
/// A socket accepted by wasmtime-wasi, with its streams.
type RealAccepted = (
    Resource<RealSocket>,
    Resource<DynInputStream>,
    Resource<DynOutputStream>,
);
/// A socket accepted here, with its streams.
type Accepted = (
    Resource<TcpSocket>,
    Resource<DynInputStream>,
    Resource<DynOutputStream>,
);

/// WIT: setting an option to 0 is `invalid-argument`.
fn nonzero<T: Default + PartialEq>(value: T) -> SocketResult<T> {
    if value == T::default() {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(value)
}

impl tcp_create_socket::Host for NetView<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        let permit = self.net.permit()?;
        let socket = TcpSocket::new(address_family, State::Unbound, Options::default(), permit);
        Ok(self.table.push(socket)?)
    }
}

impl tcp::Host for NetView<'_> {}

impl network::Host for NetView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.host(), error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.host(), err)
    }
}

impl network::HostNetwork for NetView<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.host(), this)
    }
}

impl tcp::HostTcpSocket for NetView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.bind_socket(this, network, local_address).await
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::finish_bind(h, r),
            |socket, _| {
                if socket.in_progress != Some(Op::Bind) {
                    return Err(ErrorCode::NotInProgress.into());
                }
                socket.in_progress = None;
                Ok(())
            },
        )
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.connect_socket(this, network, remote_address)
    }

    fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<Streams> {
        self.finish_connecting(this)
    }

    async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.listen_socket(this).await
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::finish_listen(h, r),
            |socket, _| {
                if socket.in_progress != Some(Op::Listen) {
                    return Err(ErrorCode::NotInProgress.into());
                }
                socket.in_progress = None;
                Ok(())
            },
        )
    }

    fn accept(&mut self, this: Resource<TcpSocket>) -> SocketResult<Accepted> {
        self.accept_connection(this)
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        self.either(
            &this,
            |h, r| RealTcp::local_address(h, r),
            |socket, _| {
                let addr = match &socket.state {
                    State::Bound { lease, .. } | State::Listening { lease, .. } => lease.addr(),
                    State::Connecting(c) => c.local,
                    State::Connected { local, .. } => *local,
                    State::Closed(e) => return Err((*e).into()),
                    State::Unbound | State::Host { .. } | State::Real { .. } => {
                        return Err(ErrorCode::InvalidState.into());
                    }
                };
                Ok(addr.into())
            },
        )
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        self.either(
            &this,
            |h, r| RealTcp::remote_address(h, r),
            |socket, _| match &socket.state {
                State::Connected { remote, .. } => Ok((*remote).into()),
                State::Closed(e) => Err((*e).into()),
                _ => Err(ErrorCode::InvalidState.into()),
            },
        )
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        match self.lend(&this)? {
            Some(lent) => {
                let listening = RealTcp::is_listening(&mut self.host(), lent.handle());
                self.give_back(&this, lent)?;
                listening
            }
            None => Ok(matches!(
                self.table.get(&this)?.state,
                State::Listening { .. }
            )),
        }
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_listen_backlog_size(h, r, value),
            |socket, _| {
                let value = nonzero(value)?.min(i32::MAX as u64);
                socket.options.backlog = Some(value);
                if let State::Listening { queue, .. } = &socket.state {
                    queue.set_backlog(usize::try_from(value).unwrap_or(usize::MAX));
                }
                Ok(())
            },
        )
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.either(
            &this,
            |h, r| RealTcp::keep_alive_enabled(h, r),
            |socket, _| Ok(socket.options.keep_alive.unwrap_or(false)),
        )
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_keep_alive_enabled(h, r, value),
            |socket, _| {
                socket.options.keep_alive = Some(value);
                Ok(())
            },
        )
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.either(
            &this,
            |h, r| RealTcp::keep_alive_idle_time(h, r),
            |socket, _| Ok(socket.options.keep_alive_idle.unwrap_or(KEEP_ALIVE_IDLE_NS)),
        )
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_keep_alive_idle_time(h, r, value),
            |socket, _| {
                socket.options.keep_alive_idle = Some(nonzero(value)?);
                Ok(())
            },
        )
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.either(
            &this,
            |h, r| RealTcp::keep_alive_interval(h, r),
            |socket, _| {
                Ok(socket
                    .options
                    .keep_alive_interval
                    .unwrap_or(KEEP_ALIVE_INTERVAL_NS))
            },
        )
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_keep_alive_interval(h, r, value),
            |socket, _| {
                socket.options.keep_alive_interval = Some(nonzero(value)?);
                Ok(())
            },
        )
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.either(
            &this,
            |h, r| RealTcp::keep_alive_count(h, r),
            |socket, _| Ok(socket.options.keep_alive_count.unwrap_or(KEEP_ALIVE_COUNT)),
        )
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_keep_alive_count(h, r, value),
            |socket, _| {
                socket.options.keep_alive_count = Some(nonzero(value)?);
                Ok(())
            },
        )
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.either(
            &this,
            |h, r| RealTcp::hop_limit(h, r),
            |socket, _| Ok(socket.options.hop_limit.unwrap_or(HOP_LIMIT)),
        )
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_hop_limit(h, r, value),
            |socket, _| {
                socket.options.hop_limit = Some(nonzero(value)?);
                Ok(())
            },
        )
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.either(
            &this,
            |h, r| RealTcp::receive_buffer_size(h, r),
            |socket, net| {
                Ok(socket
                    .options
                    .receive_buffer
                    .unwrap_or(net.config().buffer_size as u64))
            },
        )
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_receive_buffer_size(h, r, value),
            |socket, _| {
                socket.options.receive_buffer = Some(nonzero(value)?);
                Ok(())
            },
        )
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.either(
            &this,
            |h, r| RealTcp::send_buffer_size(h, r),
            |socket, net| {
                Ok(socket
                    .options
                    .send_buffer
                    .unwrap_or(net.config().buffer_size as u64))
            },
        )
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.either(
            &this,
            |h, r| RealTcp::set_send_buffer_size(h, r, value),
            |socket, _| {
                socket.options.send_buffer = Some(nonzero(value)?);
                Ok(())
            },
        )
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        // A connected real socket's own pollable; any other socket's is ours (an unconnected
        // real socket is awaited through ours).
        match &self.table.get(&this)?.state {
            State::Real { handle, .. } => {
                let real = real::borrow(handle);
                RealTcp::subscribe(&mut self.host(), real)
            }
            _ => wasmtime_wasi::p2::subscribe(self.table, this),
        }
    }

    fn shutdown(
        &mut self,
        this: Resource<TcpSocket>,
        shutdown_type: ShutdownType,
    ) -> SocketResult<()> {
        let how = match shutdown_type {
            ShutdownType::Receive => RealShutdown::Receive,
            ShutdownType::Send => RealShutdown::Send,
            ShutdownType::Both => RealShutdown::Both,
        };
        self.either(
            &this,
            |h, r| RealTcp::shutdown(h, r, how),
            |socket, _| {
                let State::Connected { endpoint, .. } = &socket.state else {
                    return Err(ErrorCode::InvalidState.into());
                };
                if matches!(how, RealShutdown::Receive | RealShutdown::Both) {
                    endpoint.shutdown_receive();
                }
                if matches!(how, RealShutdown::Send | RealShutdown::Both) {
                    endpoint.shutdown_send();
                }
                Ok(())
            },
        )
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        let socket = self.table.delete(this)?;
        // Real sockets not connected yet live in ours and go with it.
        match socket.state {
            State::Real { handle, .. } => RealTcp::drop(&mut self.host(), handle),
            _ => Ok(()),
        }
    }
}
