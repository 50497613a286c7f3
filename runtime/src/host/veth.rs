//! A veth pair from the host to the pod's namespace, with link-local addresses, so a client on
//! the host reaches the pod at its pod IP (`--pod-ip`). Made with iproute2's `ip`.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::HostError;
use super::netns::NetNs;

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

impl Veth {
    /// Creates `name` on the host and `eth0` in `netns`, addressed and up.
    pub fn create(name: &str, netns: &NetNs, ip: PodIp) -> Result<Veth, HostError> {
        ip_batch(
            &format!(
                "link add {name} type veth peer name eth0 netns {ns}\n\
                 addr add {host}/30 dev {name}\n\
                 link set {name} up\n",
                ns = netns.proc_path(),
                host = ip.host,
            ),
            None,
        )
        .inspect_err(|_| {
            // The pair may exist if a later command failed.
            let _ = delete(name);
        })?;
        let veth = Veth {
            name: name.to_owned(),
        };
        ip_batch(
            &format!("addr add {}/30 dev eth0\nlink set eth0 up\n", ip.pod),
            Some(netns),
        )?;
        Ok(veth)
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
    if std::path::Path::new("/sys/class/net").join(name).exists() {
        ip_batch(&format!("link del {name}\n"), None)?;
    }
    Ok(())
}

/// Runs `ip -batch -` with `commands`, in `netns` when given (from a thread that entered it, so
/// the child is born there).
fn ip_batch(commands: &str, netns: Option<&NetNs>) -> Result<(), HostError> {
    let run = || -> Result<(), HostError> {
        if let Some(netns) = netns {
            netns.enter()?;
        }
        let mut child = Command::new("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HostError::io("run", "ip", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(commands.as_bytes())
                .map_err(|e| HostError::io("write to", "ip", e))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| HostError::io("wait for", "ip", e))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(HostError::Command {
                command: format!("ip -batch: {}", commands.trim().replace('\n', "; ")),
                stderr: stderr.trim().replace('\n', "; "),
            });
        }
        Ok(())
    };
    match netns {
        // A thread of its own enters the namespace, so the caller's thread stays put.
        Some(_) => std::thread::scope(|scope| scope.spawn(run).join())
            .map_err(|_| HostError::io("run", "ip", std::io::Error::other("thread panicked")))?,
        None => run(),
    }
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
