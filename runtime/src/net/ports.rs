//! The pod's port table: which addresses are bound, which are listening, and ephemeral ports.
//!
//! Bind rules follow Linux with `SO_REUSEADDR` (which WASI implies) minus `TIME_WAIT`: within
//! one address family, two sockets conflict on the same port when their addresses are equal or
//! either is the wildcard. IPv4 and IPv6 are separate (WASI IPv6 sockets are `V6ONLY`). A port
//! is free again as soon as the socket holding it is dropped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::listen::ListenQueue;

/// Ports handed out for binds to port 0 and for connecting sockets: Linux's default
/// `net.ipv4.ip_local_port_range`.
pub(crate) const EPHEMERAL_PORTS: RangeInclusive<u16> = 32768..=60999;

/// A bind was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PortError {
    /// Another socket of the pod holds a conflicting address.
    #[error("address in use")]
    InUse,
    /// Every ephemeral port is taken.
    #[error("no ephemeral port left")]
    Exhausted,
    /// The network was closed with its pod.
    #[error("network closed")]
    Closed,
}

/// The port table of one pod.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    state: Mutex<Ports>,
}

#[derive(Debug)]
struct Ports {
    /// Bindings by (is IPv6, port).
    bound: HashMap<(bool, u16), Vec<Binding>>,
    next_id: u64,
    next_ephemeral: u16,
    closed: bool,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            bound: HashMap::new(),
            next_id: 0,
            next_ephemeral: *EPHEMERAL_PORTS.start(),
            closed: false,
        }
    }
}

#[derive(Debug)]
struct Binding {
    id: u64,
    ip: IpAddr,
    listener: Option<Arc<ListenQueue>>,
}

impl PortTable {
    fn lock(&self) -> MutexGuard<'_, Ports> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `addr`; port 0 picks a free ephemeral port. The lease releases it when dropped.
    pub(crate) fn reserve(self: &Arc<Self>, addr: SocketAddr) -> Result<PortLease, PortError> {
        let mut ports = self.lock();
        if ports.closed {
            return Err(PortError::Closed);
        }
        let v6 = addr.is_ipv6();
        let port = if addr.port() == 0 {
            ports.ephemeral(v6)?
        } else if ports.conflicts(v6, addr.port(), addr.ip()) {
            return Err(PortError::InUse);
        } else {
            addr.port()
        };
        let id = ports.next_id;
        ports.next_id += 1;
        ports.bound.entry((v6, port)).or_default().push(Binding {
            id,
            ip: addr.ip(),
            listener: None,
        });
        Ok(PortLease {
            table: self.clone(),
            addr: SocketAddr::new(addr.ip(), port),
            id,
        })
    }

    /// The queue of the socket listening at `dest`: bound to exactly that address, else to the
    /// wildcard on its port.
    pub(crate) fn listener(&self, dest: SocketAddr) -> Option<Arc<ListenQueue>> {
        let ports = self.lock();
        let bindings = ports.bound.get(&(dest.is_ipv6(), dest.port()))?;
        let listening = |exact: bool| {
            bindings.iter().find_map(|b| {
                let matches = if exact {
                    b.ip == dest.ip()
                } else {
                    b.ip.is_unspecified()
                };
                b.listener.clone().filter(|_| matches)
            })
        };
        listening(true).or_else(|| listening(false))
    }

    /// Refuses every further bind: the pod is gone.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }

    /// How many addresses are bound.
    pub(crate) fn bound(&self) -> usize {
        self.lock().bound.values().map(Vec::len).sum()
    }

    /// The addresses sockets listen on, sorted.
    pub(crate) fn listening(&self) -> Vec<SocketAddr> {
        let ports = self.lock();
        let mut listening: Vec<SocketAddr> = (ports.bound.iter())
            .flat_map(|(&(_, port), bindings)| {
                (bindings.iter())
                    .filter(|b| b.listener.is_some())
                    .map(move |b| SocketAddr::new(b.ip, port))
            })
            .collect();
        listening.sort();
        listening
    }
}

impl Ports {
    fn conflicts(&self, v6: bool, port: u16, ip: IpAddr) -> bool {
        self.bound.get(&(v6, port)).is_some_and(|bindings| {
            bindings
                .iter()
                .any(|b| b.ip == ip || b.ip.is_unspecified() || ip.is_unspecified())
        })
    }

    /// The next ephemeral port with nothing bound to it in this family.
    fn ephemeral(&mut self, v6: bool) -> Result<u16, PortError> {
        let (start, end) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
        for _ in EPHEMERAL_PORTS {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port >= end { start } else { port + 1 };
            if !self.bound.contains_key(&(v6, port)) {
                return Ok(port);
            }
        }
        Err(PortError::Exhausted)
    }
}

/// A bound address, released when dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    table: Arc<PortTable>,
    addr: SocketAddr,
    id: u64,
}

impl PortLease {
    /// The bound address, with its actual port.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Marks the address as listening: connections to it go to `queue`.
    pub(crate) fn listen(&self, queue: Arc<ListenQueue>) {
        let mut ports = self.table.lock();
        let key = (self.addr.is_ipv6(), self.addr.port());
        if let Some(binding) = ports
            .bound
            .get_mut(&key)
            .and_then(|bindings| bindings.iter_mut().find(|b| b.id == self.id))
        {
            binding.listener = Some(queue);
        }
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let listener = {
            let mut ports = self.table.lock();
            let key = (self.addr.is_ipv6(), self.addr.port());
            let Some(bindings) = ports.bound.get_mut(&key) else {
                return;
            };
            let removed = bindings
                .iter()
                .position(|b| b.id == self.id)
                .map(|at| bindings.swap_remove(at));
            if bindings.is_empty() {
                ports.bound.remove(&key);
            }
            removed.and_then(|b| b.listener)
        };
        // Outside the table's lock: closing resets the queued connections.
        if let Some(queue) = listener {
            queue.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn conflicting_binds_are_refused_until_released() {
        let table = Arc::new(PortTable::default());
        let first = table.reserve(addr("127.0.0.1:80")).expect("first bind");
        assert_eq!(
            table.reserve(addr("127.0.0.1:80")).err(),
            Some(PortError::InUse)
        );
        assert_eq!(
            table.reserve(addr("0.0.0.0:80")).err(),
            Some(PortError::InUse)
        );
        let other_ip = table.reserve(addr("127.0.0.2:80")).expect("other address");
        let v6 = table.reserve(addr("[::1]:80")).expect("other family");
        drop(first);
        drop(other_ip);
        let wildcard = table.reserve(addr("0.0.0.0:80")).expect("free again");
        assert_eq!(
            table.reserve(addr("127.0.0.9:80")).err(),
            Some(PortError::InUse)
        );
        drop((wildcard, v6));
        assert_eq!(table.bound(), 0);
    }

    #[test]
    fn port_zero_takes_distinct_ephemeral_ports() {
        let table = Arc::new(PortTable::default());
        let a = table.reserve(addr("127.0.0.1:0")).expect("a");
        let b = table.reserve(addr("127.0.0.1:0")).expect("b");
        assert!(EPHEMERAL_PORTS.contains(&a.addr().port()));
        assert_ne!(a.addr().port(), b.addr().port());
    }

    #[test]
    fn listeners_are_found_by_exact_address_then_wildcard() {
        let table = Arc::new(PortTable::default());
        let wildcard = table.reserve(addr("0.0.0.0:8080")).expect("wildcard");
        let queue = ListenQueue::new(4);
        wildcard.listen(queue.clone());
        let found = table.listener(addr("127.0.0.3:8080")).expect("found");
        assert!(Arc::ptr_eq(&found, &queue));
        assert!(table.listener(addr("127.0.0.1:8081")).is_none());
        assert!(table.listener(addr("[::1]:8080")).is_none());
        drop(wildcard);
        assert!(table.listener(addr("127.0.0.1:8080")).is_none());
    }

    #[test]
    fn only_listening_bindings_are_listed_until_released() {
        let table = Arc::new(PortTable::default());
        let web = table.reserve(addr("0.0.0.0:80")).expect("web");
        web.listen(ListenQueue::new(4));
        let local = table.reserve(addr("127.0.0.1:9090")).expect("local");
        local.listen(ListenQueue::new(4));
        let _client = table.reserve(addr("127.0.0.1:0")).expect("client");
        assert_eq!(
            table.listening(),
            vec![addr("0.0.0.0:80"), addr("127.0.0.1:9090")]
        );
        drop(web);
        assert_eq!(table.listening(), vec![addr("127.0.0.1:9090")]);
    }

    #[test]
    fn a_closed_table_refuses_binds() {
        let table = Arc::new(PortTable::default());
        table.close();
        assert_eq!(
            table.reserve(addr("127.0.0.1:1")).err(),
            Some(PortError::Closed)
        );
    }
}
