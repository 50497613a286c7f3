//! A veth pair from the host to the pod's namespace, with link-local addresses, so a client on
//! the host reaches the pod at its pod IP (`--pod-ip`). Made over route netlink.

use std::net::Ipv4Addr;

use super::HostError;
use super::netns::NetNs;
use super::rtnetlink::Rtnetlink;

/// The pod's address and the host end's, in one /30 of 169.254.0.0/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodIp {
    /// The pod's address (on `eth0` in its namespace).
    pub pod: Ipv4Addr,
    /// The host end's address.
    pub host: Ipv4Addr,
}

impl PodIp {
    /// Parses a pod IP: a link-local address that is the second of its /30 (`169.254.10.2`,
    /// `.6`, `.10`...); the host end takes the first.
    pub fn parse(text: &str) -> Result<PodIp, String> {
        let pod: Ipv4Addr = text
            .parse()
            .map_err(|_| format!("invalid pod IP {text:?}: expected an IPv4 address"))?;
        if !pod.is_link_local() {
            return Err(format!("pod IP {pod} is not link-local (169.254.0.0/16)"));
        }
        let bits = u32::from(pod);
        if bits & 3 != 2 {
            return Err(format!(
                "pod IP {pod} must be the second address of a /30 (e.g. 169.254.10.2)"
            ));
        }
        Ok(PodIp {
            pod,
            host: Ipv4Addr::from(bits - 1),
        })
    }
}

/// The host end of a veth pair wasmpod made.
#[derive(Debug)]
pub struct Veth {
    name: String,
}

/// The pod's end, in its namespace.
const POD_END: &str = "eth0";
/// Both ends' prefix length: the pair is a /30.
const PREFIX: u8 = 30;

impl Veth {
    /// Creates `name` on the host and `eth0` in `netns`, addressed and up. On an error nothing
    /// is left.
    pub fn create(name: &str, netns: &NetNs, ip: PodIp) -> Result<Veth, HostError> {
        let mut host = Rtnetlink::open()?;
        host.add_veth(name, POD_END, netns)?;
        let veth = Veth {
            name: name.to_owned(),
        };
        let mut configure = || -> Result<(), HostError> {
            let index = host.index(name)?;
            host.add_address(index, ip.host, PREFIX)?;
            host.set_up(index)?;
            let mut pod = Rtnetlink::open_in(netns)?;
            let index = pod.index(POD_END)?;
            pod.add_address(index, ip.pod, PREFIX)?;
            pod.set_up(index)
        };
        match configure() {
            Ok(()) => Ok(veth),
            Err(error) => {
                let _ = veth.delete();
                Err(error)
            }
        }
    }

    /// The host end's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the pair (deleting one end deletes both).
    pub fn delete(self) -> Result<(), HostError> {
        delete(&self.name)
    }
}

/// Deletes veth `name` if it exists.
pub fn delete(name: &str) -> Result<(), HostError> {
    Rtnetlink::open()?.delete(name).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ips_are_link_local_second_addresses_of_a_slash_30() {
        assert_eq!(
            PodIp::parse("169.254.10.2"),
            Ok(PodIp {
                pod: Ipv4Addr::new(169, 254, 10, 2),
                host: Ipv4Addr::new(169, 254, 10, 1),
            })
        );
        assert!(PodIp::parse("169.254.10.6").is_ok());
        assert!(PodIp::parse("169.254.10.1").is_err());
        assert!(PodIp::parse("10.0.0.2").is_err());
        assert!(PodIp::parse("pod").is_err());
    }
}
