//! Just enough route netlink (rtnetlink(7)) to make a veth pair, address it and set it up: what
//! `ip link add … type veth peer … netns …`, `ip addr add` and `ip link set … up` send, without
//! starting `ip` (each run of it costs a fork and exec, milliseconds a pod would wait for).
//!
//! A socket belongs to the network namespace of the thread that opened it, so one opened on a
//! thread that entered the pod's namespace configures the pod's side from any thread.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use super::HostError;
use super::netns::NetNs;

// <linux/netlink.h>
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 1 << 15;
// <linux/rtnetlink.h>
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
// <linux/if_link.h>
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
// <linux/veth.h>
const VETH_INFO_PEER: u16 = 1;
// <linux/if_addr.h>
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const HEADER_LEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFF_UP: u32 = 1;

/// A route netlink socket of one network namespace.
#[derive(Debug)]
pub struct Rtnetlink {
    socket: OwnedFd,
    seq: u32,
}

impl Rtnetlink {
    /// A socket in the calling thread's namespace.
    pub fn open() -> Result<Rtnetlink, HostError> {
        let socket = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
            .map_err(|e| netlink_error("open a socket", e.into()))?;
        Ok(Rtnetlink { socket, seq: 0 })
    }

    /// A socket in `netns`, opened on a short-lived thread that enters it.
    pub fn open_in(netns: &NetNs) -> Result<Rtnetlink, HostError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    netns.enter()?;
                    Rtnetlink::open()
                })
                .join()
        })
        .map_err(|_| netlink_error("open a socket", io::Error::other("thread panicked")))?
    }

    /// Creates veth `name` here with its peer `peer` in `peer_netns`, both down.
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: &NetNs,
    ) -> Result<(), HostError> {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        message.ifinfomsg(0, 0, 0);
        message.attr_str(IFLA_IFNAME, name);
        let linkinfo = message.begin_nested(IFLA_LINKINFO);
        message.attr_str(IFLA_INFO_KIND, "veth");
        let data = message.begin_nested(IFLA_INFO_DATA);
        let peer_info = message.begin_nested(VETH_INFO_PEER);
        message.ifinfomsg(0, 0, 0);
        message.attr_str(IFLA_IFNAME, peer);
        let fd = u32::try_from(peer_netns.as_fd().as_raw_fd()).unwrap_or(u32::MAX);
        message.attr(IFLA_NET_NS_FD, &fd.to_ne_bytes());
        message.end_nested(peer_info);
        message.end_nested(data);
        message.end_nested(linkinfo);
        self.request(message)
            .map_err(|e| netlink_error(&format!("add veth {name} (peer {peer})"), e))
    }

    /// The index of interface `name`.
    pub fn index(&mut self, name: &str) -> Result<u32, HostError> {
        let mut message = Message::new(RTM_GETLINK, 0);
        message.ifinfomsg(0, 0, 0);
        message.attr_str(IFLA_IFNAME, name);
        let reply = self
            .exchange(message)
            .map_err(|e| netlink_error(&format!("find interface {name}"), e))?;
        // The reply is an RTM_NEWLINK: header, then ifinfomsg whose ifi_index is at 4..8.
        reply
            .get(HEADER_LEN + 4..HEADER_LEN + 8)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_ne_bytes)
            .and_then(|index| u32::try_from(index).ok())
            .ok_or_else(|| {
                netlink_error(
                    &format!("find interface {name}"),
                    io::Error::from(io::ErrorKind::InvalidData),
                )
            })
    }

    /// Adds `address/prefix` to interface `index`.
    pub fn add_address(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), HostError> {
        let mut message = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        // ifaddrmsg: family, prefix length, flags, scope (universe), index
        message.push(&[libc::AF_INET as u8, prefix, 0, 0]);
        message.push(&index.to_ne_bytes());
        message.attr(IFA_LOCAL, &address.octets());
        message.attr(IFA_ADDRESS, &address.octets());
        self.request(message)
            .map_err(|e| netlink_error(&format!("add address {address}/{prefix}"), e))
    }

    /// Sets interface `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), HostError> {
        let mut message = Message::new(RTM_NEWLINK, 0);
        message.ifinfomsg(index, IFF_UP, IFF_UP);
        self.request(message)
            .map_err(|e| netlink_error(&format!("set interface {index} up"), e))
    }

    /// Deletes interface `name` (both ends, for a veth). `Ok(false)` when there is none.
    pub fn delete(&mut self, name: &str) -> Result<bool, HostError> {
        let mut message = Message::new(RTM_DELLINK, 0);
        message.ifinfomsg(0, 0, 0);
        message.attr_str(IFLA_IFNAME, name);
        match self.request(message) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(netlink_error(&format!("delete interface {name}"), e)),
        }
    }

    /// Sends a request that answers with an acknowledgement.
    fn request(&mut self, mut message: Message) -> io::Result<()> {
        message.add_flags(NLM_F_ACK);
        self.exchange(message).map(drop)
    }

    /// Sends `message` and returns the kernel's answer to it: the acknowledgement or reply;
    /// an error message becomes the error it carries.
    fn exchange(&mut self, mut message: Message) -> io::Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = message.finish(seq);
        rustix::net::send(&self.socket, bytes, SendFlags::empty())?;
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let (read, _) = rustix::net::recv(&self.socket, &mut buffer[..], RecvFlags::empty())?;
            let mut rest = buffer.get(..read).unwrap_or_default();
            while rest.len() >= HEADER_LEN {
                let len = u32_at(rest, 0) as usize;
                let Some(reply) = rest.get(..len).filter(|_| len >= HEADER_LEN) else {
                    return Err(io::Error::from(io::ErrorKind::InvalidData));
                };
                rest = rest.get(align(len)..).unwrap_or_default();
                if u32_at(reply, 8) != seq {
                    continue; // an answer to an earlier request
                }
                if u16_at(reply, 4) == NLMSG_ERROR {
                    let errno = u32_at(reply, HEADER_LEN) as i32;
                    if errno != 0 {
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                }
                return Ok(reply.to_vec());
            }
        }
    }
}

/// A netlink message being built: header, fixed part, attributes.
struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Message {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set by `finish`
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
        Message { bytes }
    }

    fn add_flags(&mut self, flags: u16) {
        let old = u16_at(&self.bytes, 6);
        self.bytes[6..8].copy_from_slice(&(old | flags).to_ne_bytes());
    }

    /// `struct ifinfomsg` for any link family.
    fn ifinfomsg(&mut self, index: u32, flags: u32, change: u32) {
        let start = self.bytes.len();
        self.bytes.resize(start + 4, 0); // family AF_UNSPEC, padding, type
        self.bytes.extend_from_slice(&index.to_ne_bytes());
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
        self.bytes.extend_from_slice(&change.to_ne_bytes());
        debug_assert_eq!(self.bytes.len() - start, IFINFOMSG_LEN);
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.bytes.extend_from_slice(&(len as u16).to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(payload);
        self.pad();
    }

    /// A NUL-terminated string attribute.
    fn attr_str(&mut self, kind: u16, value: &str) {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.attr(kind, &payload);
    }

    /// Starts a nested attribute; returns where, for `end_nested`.
    fn begin_nested(&mut self, kind: u16) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&0u16.to_ne_bytes());
        self.bytes
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    fn end_nested(&mut self, start: usize) {
        let len = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.bytes.resize(align(self.bytes.len()), 0);
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.bytes
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u16::from_ne_bytes)
}

fn netlink_error(what: &str, source: io::Error) -> HostError {
    HostError::Netlink {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_length_prefixed_and_padded_to_four_bytes() {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE);
        message.ifinfomsg(7, IFF_UP, IFF_UP);
        message.attr_str(IFLA_IFNAME, "veth0"); // 4 + 6 bytes, padded to 12
        let nested = message.begin_nested(IFLA_LINKINFO);
        message.attr_str(IFLA_INFO_KIND, "veth"); // 4 + 5, padded to 12
        message.end_nested(nested);
        let bytes = message.finish(9).to_vec();
        assert_eq!(bytes.len(), HEADER_LEN + IFINFOMSG_LEN + 12 + 4 + 12);
        assert_eq!(u32_at(&bytes, 0) as usize, bytes.len());
        assert_eq!(u16_at(&bytes, 4), RTM_NEWLINK);
        assert_eq!(u16_at(&bytes, 6), NLM_F_REQUEST | NLM_F_CREATE);
        assert_eq!(u32_at(&bytes, 8), 9);
        assert_eq!(u32_at(&bytes, HEADER_LEN + 4), 7);
        let name = HEADER_LEN + IFINFOMSG_LEN;
        assert_eq!(u16_at(&bytes, name), 10);
        assert_eq!(&bytes[name + 4..name + 10], b"veth0\0");
        assert_eq!(u16_at(&bytes, name + 12), 16);
        assert_eq!(u16_at(&bytes, name + 14), IFLA_LINKINFO | NLA_F_NESTED);
    }

    #[test]
    fn a_missing_interface_is_an_error_naming_it() {
        let mut netlink = Rtnetlink::open().expect("a route netlink socket");
        let error = netlink
            .index("wp-none-such")
            .expect_err("no such interface");
        let text = error.to_string();
        assert!(text.contains("wp-none-such"), "{text}");
        assert!(text.contains("No such device"), "{text}");
        assert_eq!(netlink.delete("wp-none-such").ok(), Some(false));
    }
}
