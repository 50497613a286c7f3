//! A container's name service: what its own `/etc/hosts` and `/etc/resolv.conf` say, as a
//! Linux container's libc reads them.
//!
//! A container with an image rootfs (the shim's) has the files kubelet mounts there: its
//! `/etc/hosts` (the pod's own entry, `hostAliases`) and its `/etc/resolv.conf` (the cluster
//! DNS, `search <ns>.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5`).
//! [`NameService`] answers `wasi:sockets` lookups from them: a name with fewer dots than
//! `ndots` is tried with each search domain first, and at each candidate the hosts file wins
//! over the nameservers, so `web`, `web.ns` and `web.ns.svc.cluster.local` resolve as in a
//! Linux pod. The DNS client is hickory-resolver's; the queries leave from the pod's network
//! namespace (the process's). The host's own `/etc/hosts` and `/etc/resolv.conf` are never
//! read.

use std::net::IpAddr;
use std::str::FromStr as _;
use std::sync::Arc;

use hickory_resolver::config::{ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, TokioResolver};
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

/// The most of `/etc/hosts` or `/etc/resolv.conf` that is read: an image could ship a huge one.
pub const MAX_FILE: u64 = 1 << 20;

/// A container's resolver, built from its files. Cheap to clone.
#[derive(Clone)]
pub struct NameService {
    /// `None` without nameservers: the hosts file alone answers.
    resolver: Option<Arc<TokioResolver>>,
    hosts: Arc<Hosts>,
}

impl std::fmt::Debug for NameService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameService").finish_non_exhaustive()
    }
}

impl NameService {
    /// The name service of a container whose `/etc/hosts` and `/etc/resolv.conf` hold
    /// `hosts` and `resolv_conf` (`None` where the file is missing). Without nameservers
    /// (no `resolv.conf`, or none in it) only the hosts file answers. Lines that do not
    /// parse are skipped, as libc skips them. Fails only where hickory cannot set up its
    /// client.
    pub fn from_files(
        hosts: Option<&[u8]>,
        resolv_conf: Option<&[u8]>,
    ) -> std::io::Result<NameService> {
        let (config, options) = resolv_conf
            .and_then(|text| hickory_resolver::system_conf::parse_resolv_conf(text).ok())
            .unwrap_or_else(|| {
                (
                    ResolverConfig::from_parts(None, Vec::new(), Vec::new()),
                    ResolverOpts::default(),
                )
            });
        let mut options = options;
        // Never the host's hosts file: the container's is set below.
        options.use_hosts_file = ResolveHosts::Never;
        let mut table = Hosts::default();
        if let Some(text) = hosts
            && let Err(error) = table.read_hosts_conf(text)
        {
            tracing::debug!(%error, "hosts file not read to its end");
        }
        let resolver = if config.name_servers().is_empty() {
            None
        } else {
            let mut builder =
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            *builder.options_mut() = options;
            Some(Arc::new(builder.build().map_err(std::io::Error::other)?))
        };
        Ok(NameService {
            resolver,
            hosts: Arc::new(table),
        })
    }

    /// The addresses of `domain` (a valid domain name, not an IP literal): the hosts file's
    /// for the name as given (as libc's `files` source answers, before any search domain),
    /// else the nameservers'.
    pub async fn lookup(&self, domain: &str) -> Result<Vec<IpAddr>, ErrorCode> {
        let from_file = self.in_hosts_file(domain);
        if !from_file.is_empty() {
            return Ok(from_file);
        }
        let Some(resolver) = &self.resolver else {
            return Err(ErrorCode::NameUnresolvable);
        };
        match resolver.lookup_ip(domain).await {
            Ok(found) => Ok(found.iter().map(|ip| ip.to_canonical()).collect()),
            Err(error) if error.is_no_records_found() => Err(ErrorCode::NameUnresolvable),
            Err(error) => {
                tracing::debug!(domain, %error, "name lookup failed");
                Err(ErrorCode::TemporaryResolverFailure)
            }
        }
    }

    /// What the hosts file says of `domain`: its IPv4 then its IPv6 addresses.
    fn in_hosts_file(&self, domain: &str) -> Vec<IpAddr> {
        let Ok(mut name) = Name::from_str(&domain.to_ascii_lowercase()) else {
            return Vec::new();
        };
        name.set_fqdn(true);
        [RecordType::A, RecordType::AAAA]
            .into_iter()
            .filter_map(|kind| {
                self.hosts
                    .lookup_static_host(&Query::query(name.clone(), kind))
            })
            .flat_map(|found| {
                found
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[tokio::test]
    async fn the_hosts_file_answers_alone_without_nameservers() {
        let names = NameService::from_files(
            Some(b"# comment\n10.0.0.7 db db.internal # alias\nnot-an-ip broken\nfd00::7 db\n"),
            None,
        )
        .expect("name service");
        assert_eq!(
            names.lookup("DB").await,
            Ok(vec![
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
                IpAddr::V6("fd00::7".parse::<Ipv6Addr>().expect("v6"))
            ])
        );
        assert_eq!(
            names.lookup("db.internal.").await,
            Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))])
        );
        assert_eq!(
            names.lookup("broken").await,
            Err(ErrorCode::NameUnresolvable)
        );
        assert_eq!(names.lookup("web").await, Err(ErrorCode::NameUnresolvable));
        // A resolv.conf without a nameserver is no resolver either.
        let names = NameService::from_files(None, Some(b"search svc.cluster.local\n"))
            .expect("name service");
        assert_eq!(names.lookup("web").await, Err(ErrorCode::NameUnresolvable));
    }
}
