//! `start-connect` and `finish-connect`: to a listener of the pod, or beyond it.

use std::net::SocketAddr;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::SocketResult;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket as RealTcp;

use super::super::NetView;
use super::super::listen::{Incoming, Refused};
use super::super::pipe::{Connection, Endpoint};
use super::super::ports::PortLease;
use super::super::socket::{Connecting, Op, Route, State, TcpSocket, check_remote, loopback};
use super::Streams;

impl NetView<'_> {
    /// `start-connect`.
    pub(super) fn connect_socket(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        if let Some(lent) = self.lend(&this)? {
            let started =
                RealTcp::start_connect(&mut self.host(), lent.handle(), network, remote_address);
            self.give_back(&this, lent)?;
            return started;
        }
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        let remote = SocketAddr::from(remote_address);
        check_remote(remote, socket.family)?;
        match Route::of(remote.ip(), self.net.config().virtual_loopback) {
            Route::Pod => self.connect_pod(&this, remote),
            Route::Both | Route::Host => self.connect_host(&this, network, remote),
        }
    }

    /// `finish-connect`.
    pub(super) fn finish_connecting(&mut self, this: Resource<TcpSocket>) -> SocketResult<Streams> {
        if let Some(lent) = self.lend(&this)? {
            // Once connected, the real socket stays in the table as its streams' parent.
            let finished = RealTcp::finish_connect(&mut self.host(), lent.handle());
            self.give_back(&this, lent)?;
            return finished;
        }
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress != Some(Op::Connect) {
            return Err(ErrorCode::NotInProgress.into());
        }
        if let State::Connecting(connecting) = &mut socket.state {
            let incoming = connecting.incoming.take().ok_or(ErrorCode::InvalidState)?;
            match connecting.queue.offer(incoming, None) {
                Ok(()) => {
                    self.net.stats().connected();
                    if let State::Connecting(c) =
                        std::mem::replace(&mut socket.state, State::Unbound)
                    {
                        socket.state = connected(c.endpoint, c.local, c.remote, Some(c.lease));
                    }
                }
                Err(Refused::Full(incoming)) => {
                    connecting.incoming = Some(incoming);
                    return Err(ErrorCode::WouldBlock.into());
                }
                Err(Refused::Closed) => socket.state = State::Closed(ErrorCode::ConnectionRefused),
            }
        }
        socket.in_progress = None;
        let (input, output) = match &socket.state {
            State::Connected { endpoint, .. } => endpoint.streams(),
            State::Closed(e) => return Err((*e).into()),
            _ => return Err(ErrorCode::InvalidState.into()),
        };
        let input = self.table.push_child(input, &this)?;
        let output = self.table.push_child(output, &this)?;
        Ok((input, output))
    }

    /// A connection to `remote` on the pod's loopback.
    fn connect_pod(&mut self, this: &Resource<TcpSocket>, remote: SocketAddr) -> SocketResult<()> {
        let socket = self.table.get_mut(this)?;
        let family = socket.family;
        let (lease, host) = match std::mem::replace(&mut socket.state, State::Unbound) {
            State::Unbound => (None, None),
            State::Bound { lease, host } => (Some(lease), host),
            other => {
                socket.state = other;
                return Err(ErrorCode::InvalidState.into());
            }
        };
        // A wildcard's real socket has no part in a connection within the pod.
        drop(host);
        let lease = match lease {
            Some(lease) => lease,
            None => self.reserve(SocketAddr::new(loopback(family), 0))?,
        };
        let local = match lease.addr() {
            addr if addr.ip().is_unspecified() => SocketAddr::new(loopback(family), addr.port()),
            addr => addr,
        };
        let state = match self.net.ports().listener(remote) {
            None => State::Closed(ErrorCode::ConnectionRefused),
            Some(queue) => {
                let (client, server) =
                    Connection::open(self.net.config().buffer_size, self.net.stats().clone());
                match queue.offer(Incoming::new(server, remote, local), None) {
                    Ok(()) => {
                        self.net.stats().connected();
                        connected(client, local, remote, Some(lease))
                    }
                    Err(Refused::Full(incoming)) => State::Connecting(Box::new(Connecting {
                        queue,
                        incoming: Some(incoming),
                        endpoint: client,
                        local,
                        remote,
                        lease,
                    })),
                    Err(Refused::Closed) => State::Closed(ErrorCode::ConnectionRefused),
                }
            }
        };
        let socket = self.table.get_mut(this)?;
        socket.state = state;
        socket.in_progress = Some(Op::Connect);
        Ok(())
    }

    /// A connection to `remote` beyond the pod: the socket is handed to wasmtime-wasi.
    fn connect_host(
        &mut self,
        this: &Resource<TcpSocket>,
        network: Resource<Network>,
        remote: SocketAddr,
    ) -> SocketResult<()> {
        let socket = self.table.get_mut(this)?;
        let needs_socket = match &socket.state {
            State::Unbound => true,
            State::Bound { host: Some(_), .. } => false,
            State::Bound { lease, host: None } if lease.addr().ip().is_unspecified() => true,
            // Bound to the pod's loopback: nothing beyond the pod is reachable from there.
            State::Bound { .. } => return Err(ErrorCode::RemoteUnreachable.into()),
            _ => return Err(ErrorCode::InvalidState.into()),
        };
        let (family, options) = (socket.family, socket.options.clone());
        let new = match needs_socket {
            true => {
                let handle = self.host_socket(family, &options)?;
                Some(self.table.delete(handle)?)
            }
            false => None,
        };
        let socket = self.table.get_mut(this)?;
        let (real, lease) = match std::mem::replace(&mut socket.state, State::Unbound) {
            State::Bound { lease, host } => (host.or(new), Some(lease)),
            _ => (new, None),
        };
        socket.state = State::Host {
            socket: real,
            lease,
        };
        let lent = self.lend(this)?.ok_or(ErrorCode::InvalidState)?;
        let started =
            RealTcp::start_connect(&mut self.host(), lent.handle(), network, remote.into());
        self.give_back(this, lent)?;
        started
    }
}

pub(super) fn connected(
    endpoint: Endpoint,
    local: SocketAddr,
    remote: SocketAddr,
    lease: Option<PortLease>,
) -> State {
    State::Connected {
        local,
        remote,
        endpoint,
        _lease: lease,
    }
}
