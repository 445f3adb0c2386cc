//! A small rtnetlink client: the handful of link, address, route and neighbour requests the
//! dyno network makes, each sent and acknowledged synchronously on a `NETLINK_ROUTE` socket.
//!
//! A socket belongs to the network namespace of the thread that opened it, for its whole
//! life: that is how one thread configures a new namespace from inside and the host from
//! outside, with no `ip` process.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_DELNEIGH: u16 = 29;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const NDA_DST: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// A link as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub master: Option<u32>,
}

/// An IPv4 route as a dump lists it (any table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix: u8,
    pub device: Option<u32>,
    pub table: u32,
}

/// A `NETLINK_ROUTE` socket in the network namespace of the thread that opened it.
pub struct Netlink {
    socket: OwnedFd,
    sequence: u32,
}

impl Netlink {
    pub fn open() -> anyhow::Result<Netlink> {
        let socket = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            rustix::net::SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )
        .context("open a netlink socket")?;
        rustix::net::bind(&socket, &SocketAddrNetlink::new(0, 0)).context("bind netlink")?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Creates a bridge named `name` with the link-layer address `mac` (nothing when it
    /// exists); its index. A bridge given no address takes the lowest of its ports', so it
    /// would change as containers come and go, and a container's cached address of its
    /// gateway would go stale mid-connection (a lost SYN-ACK, a second's retransmission).
    pub fn create_bridge(&mut self, name: &str, mac: [u8; 6]) -> anyhow::Result<u32> {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        message.ifinfo(AF_UNSPEC, 0, 0, 0);
        message.attr_str(IFLA_IFNAME, name);
        message.attr(IFLA_ADDRESS, &mac);
        let info = message.begin(IFLA_LINKINFO);
        message.attr_str(IFLA_INFO_KIND, "bridge");
        message.end(info);
        match self.request(message) {
            Ok(()) | Err(RequestError::Kernel(EEXIST)) => {}
            Err(error) => return Err(error.into_anyhow(&format!("create bridge {name}"))),
        }
        self.link_index(name)?
            .with_context(|| format!("bridge {name} vanished after it was created"))
    }

    /// Sets link `index` up.
    pub fn set_up(&mut self, index: u32) -> anyhow::Result<()> {
        let mut message = Message::new(RTM_NEWLINK, 0);
        message.ifinfo(AF_UNSPEC, index, IFF_UP, IFF_UP);
        self.request(message)
            .map_err(|error| error.into_anyhow(&format!("set link {index} up")))
    }

    /// Gives link `index` the address `address/prefix` (kept when it already has it).
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> anyhow::Result<()> {
        let mut message = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
        message.bytes(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
        message.bytes(&index.to_ne_bytes());
        message.attr(IFA_LOCAL, &address.octets());
        message.attr(IFA_ADDRESS, &address.octets());
        self.request(message)
            .map_err(|error| error.into_anyhow(&format!("add {address}/{prefix} to link {index}")))
    }

    /// A default route through `gateway` (in the main table).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> anyhow::Result<()> {
        let mut message = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        message.bytes(&[
            AF_INET,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        message.bytes(&0u32.to_ne_bytes());
        message.attr(RTA_GATEWAY, &gateway.octets());
        self.request(message)
            .map_err(|error| error.into_anyhow(&format!("add a default route via {gateway}")))
    }

    /// Creates a veth pair: `name` here, up, a port of bridge `master`, and `peer_name` in
    /// the network namespace `peer_namespace`.
    pub fn create_veth(
        &mut self,
        name: &str,
        master: u32,
        peer_name: &str,
        peer_namespace: BorrowedFd<'_>,
    ) -> anyhow::Result<()> {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        message.ifinfo(AF_UNSPEC, 0, IFF_UP, IFF_UP);
        message.attr_str(IFLA_IFNAME, name);
        message.attr(IFLA_MASTER, &master.to_ne_bytes());
        let info = message.begin(IFLA_LINKINFO);
        message.attr_str(IFLA_INFO_KIND, "veth");
        let data = message.begin(IFLA_INFO_DATA);
        let peer = message.begin(VETH_INFO_PEER);
        message.ifinfo(AF_UNSPEC, 0, 0, 0);
        message.attr_str(IFLA_IFNAME, peer_name);
        let fd = u32::try_from(peer_namespace.as_raw_fd()).context("namespace fd")?;
        message.attr(IFLA_NET_NS_FD, &fd.to_ne_bytes());
        message.end(peer);
        message.end(data);
        message.end(info);
        self.request(message)
            .map_err(|error| error.into_anyhow(&format!("create veth {name}")))
    }

    /// Makes bridge port `name` isolated: it reaches the bridge (the host) but no other
    /// isolated port, not even by broadcast.
    pub fn isolate_port(&mut self, name: &str) -> anyhow::Result<()> {
        let mut message = Message::new(RTM_NEWLINK, 0);
        message.ifinfo(AF_UNSPEC, 0, 0, 0);
        message.attr_str(IFLA_IFNAME, name);
        let info = message.begin(IFLA_LINKINFO);
        let data = message.begin(IFLA_INFO_SLAVE_DATA);
        message.attr(IFLA_BRPORT_ISOLATED, &[1]);
        message.end(data);
        message.end(info);
        self.request(message)
            .map_err(|error| error.into_anyhow(&format!("isolate bridge port {name}")))
    }

    /// Deletes link `name`; false when there was none.
    pub fn delete_link(&mut self, name: &str) -> anyhow::Result<bool> {
        let mut message = Message::new(RTM_DELLINK, 0);
        message.ifinfo(AF_UNSPEC, 0, 0, 0);
        message.attr_str(IFLA_IFNAME, name);
        match self.request(message) {
            Ok(()) => Ok(true),
            Err(RequestError::Kernel(ENODEV | ENOENT)) => Ok(false),
            Err(error) => Err(error.into_anyhow(&format!("delete link {name}"))),
        }
    }

    /// Forgets the link-layer address cached for `address` on link `index` (a new container
    /// may have that address behind another MAC).
    pub fn forget_neighbour(&mut self, index: u32, address: Ipv4Addr) -> anyhow::Result<()> {
        let mut message = Message::new(RTM_DELNEIGH, 0);
        message.bytes(&[AF_INET, 0, 0, 0]);
        message.bytes(&index.to_ne_bytes());
        message.bytes(&[0, 0, 0, 0]);
        message.attr(NDA_DST, &address.octets());
        match self.request(message) {
            Ok(()) | Err(RequestError::Kernel(ENOENT)) => Ok(()),
            Err(error) => Err(error.into_anyhow(&format!("forget neighbour {address}"))),
        }
    }

    /// The index of link `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> anyhow::Result<Option<u32>> {
        Ok(self
            .links()?
            .into_iter()
            .find(|link| link.name == name)
            .map(|link| link.index))
    }

    /// Every link of this namespace.
    pub fn links(&mut self) -> anyhow::Result<Vec<Link>> {
        let mut message = Message::new(RTM_GETLINK, NLM_F_DUMP);
        message.ifinfo(AF_UNSPEC, 0, 0, 0);
        let mut links = Vec::new();
        self.dump(message, |body| {
            let Some(index) = body.get(4..8) else {
                return;
            };
            let index = u32::from_ne_bytes(index.try_into().expect("four bytes"));
            let (mut name, mut master) = (String::new(), None);
            for (kind, value) in attributes(body.get(16..).unwrap_or_default()) {
                match kind {
                    IFLA_IFNAME => {
                        name = String::from_utf8_lossy(
                            value.split(|b| *b == 0).next().unwrap_or_default(),
                        )
                        .into_owned()
                    }
                    IFLA_MASTER => master = read_u32(value),
                    _ => {}
                }
            }
            links.push(Link {
                index,
                name,
                master,
            });
        })
        .context("list links")?;
        Ok(links)
    }

    /// Every IPv4 route of this namespace, in every table.
    pub fn routes(&mut self) -> anyhow::Result<Vec<Route>> {
        let mut message = Message::new(RTM_GETROUTE, NLM_F_DUMP);
        message.bytes(&[AF_INET, 0, 0, 0, 0, 0, 0, 0]);
        message.bytes(&0u32.to_ne_bytes());
        let mut routes = Vec::new();
        self.dump(message, |body| {
            if body.len() < 12 {
                return;
            }
            let mut route = Route {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix: body[1],
                device: None,
                table: u32::from(body[4]),
            };
            for (kind, value) in attributes(&body[12..]) {
                match kind {
                    RTA_DST => {
                        if let Ok(octets) = <[u8; 4]>::try_from(value) {
                            route.destination = Ipv4Addr::from(octets);
                        }
                    }
                    RTA_OIF => route.device = read_u32(value),
                    RTA_TABLE => route.table = read_u32(value).unwrap_or(route.table),
                    _ => {}
                }
            }
            routes.push(route);
        })
        .context("list routes")?;
        Ok(routes)
    }

    fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// Sends `message` with an acknowledgement asked for, and waits for it.
    fn request(&mut self, mut message: Message) -> Result<(), RequestError> {
        let sequence = self.next_sequence();
        message.finish(sequence, NLM_F_ACK);
        rustix::net::send(&self.socket, &message.buffer, SendFlags::empty())
            .map_err(RequestError::Io)?;
        let mut buffer = vec![0u8; 8192];
        loop {
            let (length, _) = rustix::net::recv(&self.socket, &mut buffer, RecvFlags::empty())
                .map_err(RequestError::Io)?;
            for (kind, header_sequence, body) in messages(&buffer[..length]) {
                if header_sequence != sequence {
                    continue;
                }
                if kind == NLMSG_ERROR {
                    let code = body
                        .get(..4)
                        .map(|b| i32::from_ne_bytes(b.try_into().expect("four bytes")))
                        .unwrap_or(0);
                    return match code {
                        0 => Ok(()),
                        code => Err(RequestError::Kernel(-code)),
                    };
                }
            }
        }
    }

    /// Sends a dump request and calls `each` with the body of every answer.
    fn dump(&mut self, mut message: Message, mut each: impl FnMut(&[u8])) -> anyhow::Result<()> {
        let sequence = self.next_sequence();
        message.finish(sequence, 0);
        rustix::net::send(&self.socket, &message.buffer, SendFlags::empty())?;
        let mut buffer = vec![0u8; 32768];
        loop {
            let (length, _) = rustix::net::recv(&self.socket, &mut buffer, RecvFlags::empty())?;
            for (kind, header_sequence, body) in messages(&buffer[..length]) {
                if header_sequence != sequence {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("four bytes")))
                            .unwrap_or(0);
                        bail!("the kernel answered error {}", -code);
                    }
                    _ => each(body),
                }
            }
        }
    }
}

enum RequestError {
    Io(rustix::io::Errno),
    /// The kernel refused with this errno.
    Kernel(i32),
}

impl RequestError {
    fn into_anyhow(self, what: &str) -> anyhow::Error {
        match self {
            RequestError::Io(errno) => anyhow::anyhow!("{what}: netlink: {errno}"),
            RequestError::Kernel(code) => {
                anyhow::anyhow!("{what}: {}", std::io::Error::from_raw_os_error(code))
            }
        }
    }
}

/// One request being built: a header whose length and sequence are filled in by `finish`.
struct Message {
    buffer: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Message {
        let mut buffer = Vec::with_capacity(256);
        buffer.extend_from_slice(&0u32.to_ne_bytes()); // length
        buffer.extend_from_slice(&kind.to_ne_bytes());
        buffer.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        buffer.extend_from_slice(&0u32.to_ne_bytes()); // sequence
        buffer.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        Message { buffer }
    }

    fn ifinfo(&mut self, family: u8, index: u32, flags: u32, change: u32) {
        self.bytes(&[family, 0, 0, 0]);
        self.bytes(&index.to_ne_bytes());
        self.bytes(&flags.to_ne_bytes());
        self.bytes(&change.to_ne_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        let length = u16::try_from(4 + value.len()).expect("attributes are small");
        self.buffer.extend_from_slice(&length.to_ne_bytes());
        self.buffer.extend_from_slice(&kind.to_ne_bytes());
        self.buffer.extend_from_slice(value);
        self.pad();
    }

    fn attr_str(&mut self, kind: u16, value: &str) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.attr(kind, &bytes);
    }

    /// Starts a nested attribute; `end` fills in its length.
    fn begin(&mut self, kind: u16) -> usize {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&0u16.to_ne_bytes());
        self.buffer
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    fn end(&mut self, start: usize) {
        let length = u16::try_from(self.buffer.len() - start).expect("attributes are small");
        self.buffer[start..start + 2].copy_from_slice(&length.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buffer.len().is_multiple_of(4) {
            self.buffer.push(0);
        }
    }

    fn finish(&mut self, sequence: u32, extra_flags: u16) {
        let length = u32::try_from(self.buffer.len()).expect("messages are small");
        self.buffer[0..4].copy_from_slice(&length.to_ne_bytes());
        let flags = u16::from_ne_bytes([self.buffer[6], self.buffer[7]]) | extra_flags;
        self.buffer[6..8].copy_from_slice(&flags.to_ne_bytes());
        self.buffer[8..12].copy_from_slice(&sequence.to_ne_bytes());
    }
}

/// The messages in a datagram: (type, sequence, body).
fn messages(mut data: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let length = u32::from_ne_bytes(data[0..4].try_into().expect("four bytes")) as usize;
        if length < 16 || length > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let sequence = u32::from_ne_bytes(data[8..12].try_into().expect("four bytes"));
        out.push((kind, sequence, &data[16..length]));
        let advance = (length + 3) & !3;
        data = data.get(advance..).unwrap_or_default();
    }
    out
}

/// The attributes in `data`: (type without flags, value).
fn attributes(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let length = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        if length < 4 || length > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        out.push((kind, &data[4..length]));
        let advance = (length + 3) & !3;
        data = data.get(advance..).unwrap_or_default();
    }
    out
}

fn read_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nested_attributes_have_their_lengths() {
        let mut message = Message::new(RTM_NEWLINK, NLM_F_CREATE);
        message.ifinfo(AF_UNSPEC, 0, 0, 0);
        let info = message.begin(IFLA_LINKINFO);
        message.attr_str(IFLA_INFO_KIND, "bridge");
        message.end(info);
        message.finish(7, NLM_F_ACK);
        let parsed = messages(&message.buffer);
        assert_eq!(parsed.len(), 1);
        let (kind, sequence, body) = parsed[0];
        assert_eq!((kind, sequence), (RTM_NEWLINK, 7));
        let flags = u16::from_ne_bytes([message.buffer[6], message.buffer[7]]);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK);
        let outer = attributes(&body[16..]);
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, IFLA_LINKINFO);
        let inner = attributes(outer[0].1);
        assert_eq!(inner, vec![(IFLA_INFO_KIND, &b"bridge\0"[..])]);
    }
}
