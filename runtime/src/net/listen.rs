//! A listening socket's queue of connections waiting for `accept`, bounded by its backlog.
//!
//! A connection is established (its bytes may flow) as soon as it is queued, as the kernel
//! completes the handshake before `accept`. A connector that finds the backlog full waits for
//! room, as a SYN is retried; one that finds the queue closed is refused. Connections still
//! queued when the listener goes away are reset.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::pipe::Endpoint;

/// A connection waiting to be accepted.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// The server end; taken by `accept`. Reset if the connection is never accepted.
    endpoint: Option<Endpoint>,
    /// The address the client connected to: the accepted socket's local address.
    pub(crate) local: SocketAddr,
    /// The client's address.
    pub(crate) remote: SocketAddr,
}

impl Incoming {
    pub(crate) fn new(endpoint: Endpoint, local: SocketAddr, remote: SocketAddr) -> Self {
        Incoming {
            endpoint: Some(endpoint),
            local,
            remote,
        }
    }

    /// The server end, now owned by an accepted socket.
    pub(crate) fn take(mut self) -> Option<Endpoint> {
        self.endpoint.take()
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.reset();
        }
    }
}

/// Why a connection was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The backlog is full; the caller is woken when there is room.
    Full(Incoming),
    /// The listener is gone.
    Closed,
}

/// The accept queue of one listening socket.
#[derive(Debug)]
pub(crate) struct ListenQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug)]
struct QueueState {
    pending: VecDeque<Incoming>,
    backlog: usize,
    closed: bool,
    acceptor: Option<Waker>,
    connectors: Vec<Waker>,
}

impl QueueState {
    /// Wakes `cx` when there is room (once, however often it asks).
    fn wait_for_room(&mut self, cx: &Context<'_>) {
        if !self.connectors.iter().any(|w| w.will_wake(cx.waker())) {
            self.connectors.push(cx.waker().clone());
        }
    }
}

impl ListenQueue {
    /// An open queue holding up to `backlog` connections (at least one).
    pub(crate) fn new(backlog: usize) -> Arc<Self> {
        Arc::new(ListenQueue {
            state: Mutex::new(QueueState {
                pending: VecDeque::new(),
                backlog: backlog.max(1),
                closed: false,
                acceptor: None,
                connectors: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the backlog; connectors waiting for room are woken.
    pub(crate) fn set_backlog(&self, backlog: usize) {
        let connectors = {
            let mut state = self.lock();
            state.backlog = backlog.max(1);
            std::mem::take(&mut state.connectors)
        };
        connectors.into_iter().for_each(Waker::wake);
    }

    /// Queues `incoming` for `accept`. When the backlog is full, `cx` (if any) is woken once
    /// there is room.
    pub(crate) fn offer(
        &self,
        incoming: Incoming,
        cx: Option<&Context<'_>>,
    ) -> Result<(), Refused> {
        let acceptor = {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.pending.len() >= state.backlog {
                if let Some(cx) = cx {
                    state.wait_for_room(cx);
                }
                return Err(Refused::Full(incoming));
            }
            state.pending.push_back(incoming);
            state.acceptor.take()
        };
        if let Some(waker) = acceptor {
            waker.wake();
        }
        Ok(())
    }

    /// Ready when an `offer` would not find the backlog full.
    pub(crate) fn poll_room(&self, cx: &Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.closed || state.pending.len() < state.backlog {
            return Poll::Ready(());
        }
        state.wait_for_room(cx);
        Poll::Pending
    }

    /// Ready when a connection is waiting (or the queue is closed).
    pub(crate) fn poll_pending(&self, cx: &Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.closed || !state.pending.is_empty() {
            return Poll::Ready(());
        }
        match &state.acceptor {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.acceptor = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The oldest waiting connection.
    pub(crate) fn accept(&self) -> Option<Incoming> {
        let (incoming, connectors) = {
            let mut state = self.lock();
            let incoming = state.pending.pop_front()?;
            (incoming, std::mem::take(&mut state.connectors))
        };
        connectors.into_iter().for_each(Waker::wake);
        Some(incoming)
    }

    /// Closes the queue: waiting connections are reset, waiting connectors refused.
    pub(crate) fn close(&self) {
        let (pending, connectors) = {
            let mut state = self.lock();
            state.closed = true;
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.connectors),
            )
        };
        drop(pending);
        connectors.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Stats;
    use crate::net::pipe::Connection;

    fn incoming() -> (Endpoint, Incoming) {
        let (client, server) = Connection::open(16, Arc::new(Stats::default()));
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("address");
        (client, Incoming::new(server, addr, addr))
    }

    #[test]
    fn the_backlog_bounds_the_queue_and_close_refuses() {
        let queue = ListenQueue::new(1);
        let (_c1, first) = incoming();
        assert!(queue.offer(first, None).is_ok());
        let (_c2, second) = incoming();
        let Err(Refused::Full(second)) = queue.offer(second, None) else {
            panic!("a full backlog hands the connection back");
        };
        assert!(queue.accept().and_then(Incoming::take).is_some());
        assert!(queue.offer(second, None).is_ok());
        queue.close();
        let (_c3, third) = incoming();
        assert!(matches!(queue.offer(third, None), Err(Refused::Closed)));
    }
}
