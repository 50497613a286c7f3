//! `start-listen` and `accept`: the pod's queue, and a wildcard listener's real socket.

use wasmtime::component::Resource;
use wasmtime_wasi::p2::SocketResult;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket as RealTcp;

use super::super::listen::{Incoming, ListenQueue};
use super::super::socket::{DEFAULT_BACKLOG, Op, Options, State, TcpSocket};
use super::super::{NetView, SocketPermit};
use super::connect::connected;
use super::real::{borrow, is};
use super::{Accepted, RealAccepted};

impl NetView<'_> {
    /// `start-listen`.
    pub(super) async fn listen_socket(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        if let Some(lent) = self.lend(&this)? {
            let started = RealTcp::start_listen(&mut self.host(), lent.handle()).await;
            self.give_back(&this, lent)?;
            return started;
        }
        let socket = self.table.get_mut(&this)?;
        if socket.in_progress.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        let backlog = socket.options.backlog.unwrap_or(DEFAULT_BACKLOG);
        // WASI 0.2: a socket is bound before it listens.
        let (lease, host) = match std::mem::replace(&mut socket.state, State::Unbound) {
            State::Bound { lease, host } => (lease, host),
            other => {
                socket.state = other;
                return Err(ErrorCode::InvalidState.into());
            }
        };
        let host = match host {
            None => None,
            Some(real) => {
                let handle = self.table.push(real)?;
                let mut view = self.host();
                let listened = match RealTcp::start_listen(&mut view, borrow(&handle)).await {
                    Ok(()) => RealTcp::finish_listen(&mut view, borrow(&handle)),
                    Err(e) => Err(e),
                };
                let real = self.table.delete(handle)?;
                if let Err(e) = listened {
                    self.table.get_mut(&this)?.state = State::Bound {
                        lease,
                        host: Some(real),
                    };
                    return Err(e);
                }
                Some(real)
            }
        };
        let queue = ListenQueue::new(usize::try_from(backlog).unwrap_or(usize::MAX));
        lease.listen(queue.clone());
        let socket = self.table.get_mut(&this)?;
        socket.state = State::Listening {
            lease,
            queue,
            host,
            host_turn: false,
        };
        socket.in_progress = Some(Op::Listen);
        Ok(())
    }

    /// `accept`.
    pub(super) fn accept_connection(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<Accepted> {
        let socket = self.table.get(&this)?;
        let (family, options) = (socket.family, socket.options.clone());
        if let Some(lent) = self.lend(&this)? {
            let accepted = match self.net.permit() {
                Ok(permit) => RealTcp::accept(&mut self.host(), lent.handle()).map(|a| (permit, a)),
                Err(e) => Err(e.into()),
            };
            self.give_back(&this, lent)?;
            let (permit, (accepted, input, output)) = accepted?;
            let state = State::Real {
                handle: accepted,
                _lease: None,
            };
            let socket = self
                .table
                .push(TcpSocket::new(family, state, options, permit))?;
            return Ok((socket, input, output));
        }
        let socket = self.table.get_mut(&this)?;
        let State::Listening {
            queue,
            host,
            host_turn,
            ..
        } = &mut socket.state
        else {
            return Err(ErrorCode::InvalidState.into());
        };
        let permit = self.net.permit()?;
        let queue = queue.clone();
        let has_host = host.is_some();
        let host_first = *host_turn;
        *host_turn = !host_first;
        for from_host in [host_first, !host_first] {
            if !from_host {
                if let Some(incoming) = queue.accept() {
                    return self.accept_pod(family, options, incoming, permit);
                }
            } else if has_host && let Some((accepted, input, output)) = self.accept_host(&this)? {
                self.net.stats().host_accepted();
                let state = State::Real {
                    handle: accepted,
                    _lease: None,
                };
                let socket = self
                    .table
                    .push(TcpSocket::new(family, state, options, permit))?;
                return Ok((socket, input, output));
            }
        }
        Err(ErrorCode::WouldBlock.into())
    }

    /// Moves a wildcard listener's real socket into the table for one `accept`.
    fn accept_host(&mut self, this: &Resource<TcpSocket>) -> SocketResult<Option<RealAccepted>> {
        let socket = self.table.get_mut(this)?;
        let State::Listening { host, .. } = &mut socket.state else {
            return Ok(None);
        };
        let Some(listener) = host.take() else {
            return Ok(None);
        };
        let handle = self.table.push(listener)?;
        let accepted = RealTcp::accept(&mut self.host(), borrow(&handle));
        let listener = self.table.delete(handle)?;
        if let State::Listening { host, .. } = &mut self.table.get_mut(this)?.state {
            *host = Some(listener);
        }
        match accepted {
            Ok(accepted) => Ok(Some(accepted)),
            Err(e) if is(&e, ErrorCode::WouldBlock) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The accepted end of a pod connection, as a new socket with its streams.
    fn accept_pod(
        &mut self,
        family: IpAddressFamily,
        options: Options,
        incoming: Incoming,
        permit: SocketPermit,
    ) -> SocketResult<Accepted> {
        let (local, remote) = (incoming.local, incoming.remote);
        let endpoint = incoming.take().ok_or(ErrorCode::ConnectionAborted)?;
        let (input, output) = endpoint.streams();
        let state = connected(endpoint, local, remote, None);
        let socket = self
            .table
            .push(TcpSocket::new(family, state, options, permit))?;
        let input = self.table.push_child(input, &socket)?;
        let output = self.table.push_child(output, &socket)?;
        Ok((socket, input, output))
    }
}
