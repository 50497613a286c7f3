//! `wasi:sockets/ip-name-lookup` for a pod: `localhost` is the pod's own loopback, answered
//! here under every policy (as a container's `/etc/hosts` answers it, without a resolver);
//! IP literals are themselves; any other name goes to the container's name service (its own
//! `/etc/hosts` and `/etc/resolv.conf`, see [`super::dns`]) when it has an image rootfs, else
//! to the host's resolver as wasmtime-wasi does it; unless the policy keeps the pod to itself
//! (`access-denied`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::task::Poll;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, SocketResult, subscribe};

use super::bindings::ip_name_lookup::{Host, HostResolveAddressStream};
use super::{NameService, NetView, NetworkPolicy};

/// The addresses of one lookup, handed out one by one.
pub struct ResolveAddressStream(Lookup);

enum Lookup {
    Done(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
    Resolving(tokio::task::JoinHandle<Result<Vec<IpAddr>, ErrorCode>>),
}

impl Lookup {
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if let Lookup::Resolving(task) = self {
            let Poll::Ready(joined) = std::pin::Pin::new(task).poll(cx) else {
                return Poll::Pending;
            };
            let result = joined
                .unwrap_or(Err(ErrorCode::PermanentResolverFailure))
                .map(Vec::into_iter);
            *self = Lookup::Done(result);
        }
        Poll::Ready(())
    }
}

/// What `name` resolves to without asking a resolver: `localhost` (and its subdomains, RFC
/// 6761) and IP literals. `Err` for a name that is neither.
fn resolve_locally(name: &str) -> Result<Vec<IpAddr>, ()> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<IpAddr>().map(|ip| vec![ip]).map_err(drop)
}

/// What `name` resolves to for a container whose names are `names`: `localhost` and IP
/// literals at once, else as [`resolve`] answers (for the runtime's own connections on a
/// guest's behalf, such as its outgoing HTTP requests).
pub(crate) async fn resolve_name(
    name: &str,
    names: Option<NameService>,
) -> Result<Vec<IpAddr>, ErrorCode> {
    match resolve_locally(name) {
        Ok(found) => Ok(found),
        Err(()) => resolve(name.to_owned(), names).await,
    }
}

/// Resolves `name` with the container's name service, else the host's resolver (as
/// wasmtime-wasi does): the name must be a valid (possibly internationalized) domain name.
async fn resolve(name: String, names: Option<NameService>) -> Result<Vec<IpAddr>, ErrorCode> {
    let domain = match url::Host::parse(&name) {
        Ok(url::Host::Domain(domain)) => domain,
        Ok(url::Host::Ipv4(ip)) => return Ok(vec![IpAddr::V4(ip)]),
        Ok(url::Host::Ipv6(ip)) => return Ok(vec![IpAddr::V6(ip)]),
        Err(_) => return Err(ErrorCode::InvalidArgument),
    };
    if let Some(names) = names {
        return names.lookup(&domain).await;
    }
    let addresses = tokio::net::lookup_host((domain.as_str(), 0))
        .await
        .map_err(|_| ErrorCode::NameUnresolvable)?;
    Ok(addresses.map(|a| a.ip().to_canonical()).collect())
}

impl Host for NetView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        // The network resource is the capability to look names up; check it is one.
        self.table.get(&network)?;
        let lookup = match resolve_locally(&name) {
            Ok(addresses) => Lookup::Done(Ok(addresses.into_iter())),
            Err(()) if self.net.config().policy == NetworkPolicy::PodOnly => {
                return Err(ErrorCode::AccessDenied.into());
            }
            Err(()) => Lookup::Resolving(tokio::spawn(resolve(name, self.net.names().cloned()))),
        };
        Ok(self.table.push(ResolveAddressStream(lookup))?)
    }
}

impl HostResolveAddressStream for NetView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        let stream = self.table.get_mut(&stream)?;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if stream.0.poll(&mut cx).is_pending() {
            return Err(ErrorCode::WouldBlock.into());
        }
        match &mut stream.0 {
            Lookup::Done(Ok(addresses)) => Ok(addresses.next().map(IpAddress::from)),
            Lookup::Done(Err(error)) => Err((*error).into()),
            Lookup::Resolving(_) => Err(ErrorCode::WouldBlock.into()),
        }
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        // Dropping a lookup in flight abandons it; the resolver's answer is discarded.
        if let Lookup::Resolving(task) = self.table.delete(stream)?.0 {
            task.abort();
        }
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.0.poll(cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_and_literals_resolve_without_a_resolver() {
        let loopback = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        for name in ["localhost", "LOCALHOST.", "api.localhost"] {
            assert_eq!(resolve_locally(name), Ok(loopback.clone()), "{name}");
        }
        assert_eq!(
            resolve_locally("10.1.2.3"),
            Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))])
        );
        assert_eq!(
            resolve_locally("[::1]"),
            Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])
        );
        assert_eq!(resolve_locally("example.com"), Err(()));
        assert_eq!(resolve_locally("notlocalhost"), Err(()));
    }

    #[tokio::test]
    async fn a_name_that_is_not_a_domain_is_invalid_before_any_resolver_is_asked() {
        for name in ["bad name", "a..b/c", ""] {
            assert!(
                matches!(
                    resolve(name.into(), None).await,
                    Err(ErrorCode::InvalidArgument)
                ),
                "{name:?}"
            );
        }
        assert_eq!(
            resolve("[::1]".into(), None).await.ok(),
            Some(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])
        );
    }
}
