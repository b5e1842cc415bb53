//! A small synchronous rtnetlink client (NETLINK_ROUTE) for the control path: next-hop lookup,
//! the kernel's neighbour table, link and address facts.
//!
//! Built on `netlink-packet-route` 0.34 / `netlink-packet-core` 0.9 / `netlink-sys` 0.9 (they
//! resolve cleanly with the workspace and add only `bytes`, `bitflags`, `log`, `zerocopy`),
//! so no message layout is hand-written here. Only blocking request/reply is used: the worker
//! calls this on its slow path (a neighbour missing or due for refresh), never per packet.
//!
//! Every call is bounded: the socket has a receive timeout ([`RECV_TIMEOUT`]) and a reply may
//! hold at most [`MAX_REPLY_MESSAGES`] messages, so a misbehaving kernel cannot hang the caller.
//! Replies carry the request's sequence number; stale replies from an earlier timed-out request
//! are skipped.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// The address family and NDA_DST of a neighbour request for `ip`.
fn neigh_dst(ip: IpAddr) -> (AddressFamily, NeighbourAddress) {
    match ip {
        IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
        IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
    }
}

/// An Ethernet MAC address.
pub type Mac = [u8; 6];

/// How long one request waits for the kernel's reply before failing with `TimedOut`.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(1);
/// Upper bound on messages read for one request (a dump of a large table is cut here).
pub const MAX_REPLY_MESSAGES: usize = 65_536;
/// Receive buffer: the kernel sends dumps in chunks of at most ~32 KiB.
const RECV_BUF: usize = 64 * 1024;

/// The next hop toward a destination, from the kernel's routing table (RTM_GETROUTE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// The address whose MAC frames must carry: the gateway, or `dst` itself when on-link.
    pub ip: Ipv4Addr,
    /// True when `ip` is a gateway (RTA_GATEWAY present); false when `dst` is on-link.
    pub via_gateway: bool,
    /// Output interface index (RTA_OIF).
    pub oif: u32,
    /// Preferred source address (RTA_PREFSRC), if the kernel gave one.
    pub prefsrc: Option<Ipv4Addr>,
}

/// The kernel's neighbour states (NUD_*), reduced to what the stack needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NudState {
    /// NUD_REACHABLE: confirmed recently.
    Reachable,
    /// NUD_STALE: valid address, not confirmed recently.
    Stale,
    /// NUD_DELAY: stale and in use; a probe is about to be sent.
    Delay,
    /// NUD_PROBE: being re-validated by unicast probes.
    Probe,
    /// NUD_PERMANENT: static entry, never expires.
    Permanent,
    /// NUD_NOARP: no resolution needed (e.g. point-to-point links).
    Noarp,
    /// NUD_INCOMPLETE: resolution in progress, no address yet.
    Incomplete,
    /// NUD_FAILED: resolution failed.
    Failed,
    /// NUD_NONE or an unknown value.
    Other,
}

impl NudState {
    /// Whether the link-layer address may be used to send: REACHABLE, STALE, DELAY, PROBE,
    /// PERMANENT, NOARP carry a valid address (STALE/DELAY/PROBE are still used by the kernel
    /// itself while it re-validates); INCOMPLETE and FAILED do not.
    pub fn usable(self) -> bool {
        matches!(
            self,
            NudState::Reachable
                | NudState::Stale
                | NudState::Delay
                | NudState::Probe
                | NudState::Permanent
                | NudState::Noarp
        )
    }

    fn from_netlink(s: NeighbourState) -> Self {
        match s {
            NeighbourState::Reachable => NudState::Reachable,
            NeighbourState::Stale => NudState::Stale,
            NeighbourState::Delay => NudState::Delay,
            NeighbourState::Probe => NudState::Probe,
            NeighbourState::Permanent => NudState::Permanent,
            NeighbourState::Noarp => NudState::Noarp,
            NeighbourState::Incomplete => NudState::Incomplete,
            NeighbourState::Failed => NudState::Failed,
            _ => NudState::Other,
        }
    }
}

/// Facts about one interface (RTM_GETLINK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Hardware address (IFLA_ADDRESS).
    pub mac: Mac,
    /// MTU in bytes (IFLA_MTU): the largest IP packet, Ethernet header excluded.
    pub mtu: u32,
    /// IFLA_NUM_RX_QUEUES (1 when the kernel does not say).
    pub rx_queues: u32,
}

/// A synchronous rtnetlink socket. Not shared between threads: one per worker or control thread.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: RECV_TIMEOUT.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt reads a timeval we own, of the size we pass.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// The kernel's route to `dst`: the next hop and output interface (like `ip route get`).
    /// Fails with `InvalidInput` for local, broadcast, multicast or unreachable destinations.
    pub fn route_get(&mut self, dst: Ipv4Addr) -> io::Result<NextHop> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = 32;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        let replies = self.request(RouteNetlinkMessage::GetRoute(msg), 0)?;
        let Some(RouteNetlinkMessage::NewRoute(r)) = replies.into_iter().next() else {
            return Err(invalid("RTM_GETROUTE: no route in reply"));
        };
        if r.header.kind != RouteType::Unicast {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("route to {dst} is {:?}, not unicast", r.header.kind),
            ));
        }
        let (mut gw, mut oif, mut prefsrc) = (None, None, None);
        for a in &r.attributes {
            match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(*g),
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::PrefSource(RouteAddress::Inet(s)) => prefsrc = Some(*s),
                _ => {}
            }
        }
        let oif = oif.ok_or_else(|| invalid("RTM_GETROUTE: reply without RTA_OIF"))?;
        Ok(NextHop {
            ip: gw.unwrap_or(dst),
            via_gateway: gw.is_some(),
            oif,
            prefsrc,
        })
    }

    /// Every IPv4 route of the main table (RTM_GETROUTE dump), reduced to what the stack's
    /// next-hop choice needs (see [`super::route`] for what is modelled).
    pub fn route_dump(&mut self) -> io::Result<Vec<super::route::Route>> {
        use super::route::{Route, Target};
        let v4 = |a: &RouteAddress| match a {
            RouteAddress::Inet(ip) => Some(*ip),
            _ => None,
        };
        let routes = self.main_routes(AddressFamily::Inet, Ipv4Addr::UNSPECIFIED, v4)?;
        Ok(routes
            .into_iter()
            .map(|r| Route {
                dst: r.dst,
                prefix_len: r.prefix_len,
                metric: r.metric,
                target: match (r.drop, r.gw) {
                    (true, _) => Target::Drop,
                    (false, Some(g)) => Target::Gateway(g),
                    (false, None) => Target::OnLink,
                },
            })
            .collect())
    }

    /// Every IPv6 route of the main table (RTM_GETROUTE dump, AF_INET6), as
    /// [`Netlink::route_dump`] for IPv4. Local, multicast and other non-unicast routes (the
    /// `local` table's, `ff00::/8`) are skipped like there.
    pub fn route_dump6(&mut self) -> io::Result<Vec<super::route::Route6>> {
        use super::route::{Route6, Target6};
        let v6 = |a: &RouteAddress| match a {
            RouteAddress::Inet6(ip) => Some(*ip),
            _ => None,
        };
        let routes = self.main_routes(AddressFamily::Inet6, Ipv6Addr::UNSPECIFIED, v6)?;
        Ok(routes
            .into_iter()
            .map(|r| Route6 {
                dst: r.dst,
                prefix_len: r.prefix_len,
                metric: r.metric,
                target: match (r.drop, r.gw) {
                    (true, _) => Target6::Drop,
                    (false, Some(g)) => Target6::Gateway(g),
                    (false, None) => Target6::OnLink,
                },
            })
            .collect())
    }

    /// The main table's unicast, blackhole, unreachable and prohibit routes of one family
    /// (RTM_GETROUTE dump); `addr` reads that family's addresses (others are ignored), `any`
    /// is the destination of a route without RTA_DST (the default route). A multipath
    /// route's gateway is its first hop's.
    fn main_routes<A: Copy>(
        &mut self,
        family: AddressFamily,
        any: A,
        addr: impl Fn(&RouteAddress) -> Option<A>,
    ) -> io::Result<Vec<MainRoute<A>>> {
        use netlink_packet_route::route::RouteHeader;
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        let replies = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let (mut table, mut dst, mut gw, mut metric) =
                (u32::from(r.header.table), any, None, 0);
            for a in &r.attributes {
                match a {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(d) => dst = addr(d).unwrap_or(dst),
                    RouteAttribute::Gateway(g) => gw = addr(g).or(gw),
                    RouteAttribute::Priority(p) => metric = *p,
                    RouteAttribute::MultiPath(hops) => {
                        gw = gw.or_else(|| {
                            hops.first()?.attributes.iter().find_map(|a| match a {
                                RouteAttribute::Gateway(g) => addr(g),
                                _ => None,
                            })
                        })
                    }
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            let drop = match r.header.kind {
                RouteType::Unicast => false,
                RouteType::BlackHole | RouteType::Unreachable | RouteType::Prohibit => true,
                _ => continue,
            };
            out.push(MainRoute {
                dst,
                prefix_len: r.header.destination_prefix_length,
                metric,
                gw,
                drop,
            });
        }
        Ok(out)
    }

    /// The kernel's neighbour entry for `ip` on `ifindex`: `Some((mac, state))` when the entry
    /// exists and carries a link-layer address; `None` when absent (ENOENT) or address-less
    /// (e.g. INCOMPLETE). Check [`NudState::usable`] before sending to the MAC.
    /// IPv6 entries are the kernel's NDP cache (the same table, AF_INET6).
    pub fn neigh_get(
        &mut self,
        ifindex: u32,
        ip: impl Into<IpAddr>,
    ) -> io::Result<Option<(Mac, NudState)>> {
        let mut msg = NeighbourMessage::default();
        let (family, dst) = neigh_dst(ip.into());
        msg.header.family = family;
        msg.header.ifindex = ifindex;
        msg.attributes.push(NeighbourAttribute::Destination(dst));
        let replies = match self.request(RouteNetlinkMessage::GetNeighbour(msg), 0) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        for r in replies {
            let RouteNetlinkMessage::NewNeighbour(n) = r else {
                continue;
            };
            let state = NudState::from_netlink(n.header.state);
            for a in &n.attributes {
                if let NeighbourAttribute::LinkLayerAddress(ll) = a {
                    if let Ok(mac) = <Mac>::try_from(ll.as_slice()) {
                        return Ok(Some((mac, state)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Asks the kernel to resolve `ip` on `ifindex` and returns at once (the kernel ARPs in the
    /// background). This is `ip neigh replace IP dev IF use`: RTM_NEWNEIGH with NTF_USE and
    /// NLM_F_CREATE, which creates the entry if needed and calls `neigh_event_send()` on it:
    /// a NONE/FAILED entry goes INCOMPLETE and broadcasts ARP; a STALE one goes DELAY/PROBE and is
    /// re-validated; a REACHABLE one is untouched. The state field is ignored by the kernel with
    /// NTF_USE; we send NUD_NONE so the entry is not marked permanent (it stays garbage
    /// collectable). Verified on Linux 6.18 by `tests/veth_neigh.rs`.
    /// For IPv6 the same request makes the kernel send a Neighbor Solicitation (NDP stays
    /// the kernel's, as ARP does).
    pub fn neigh_resolve(&mut self, ifindex: u32, ip: impl Into<IpAddr>) -> io::Result<()> {
        let mut msg = NeighbourMessage::default();
        let (family, dst) = neigh_dst(ip.into());
        msg.header.family = family;
        msg.header.ifindex = ifindex;
        msg.header.state = NeighbourState::None;
        msg.header.flags = NeighbourFlags::Use;
        msg.attributes.push(NeighbourAttribute::Destination(dst));
        self.request(RouteNetlinkMessage::NewNeighbour(msg), NLM_F_CREATE)?;
        Ok(())
    }

    /// Index, MAC and MTU of the interface named `ifname`.
    pub fn link_info(&mut self, ifname: &str) -> io::Result<LinkInfo> {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(ifname.to_string()));
        let replies = self
            .request(RouteNetlinkMessage::GetLink(msg), 0)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => {
                    io::Error::new(io::ErrorKind::NotFound, format!("no interface {ifname:?}"))
                }
                _ => e,
            })?;
        let Some(RouteNetlinkMessage::NewLink(l)) = replies.into_iter().next() else {
            return Err(invalid("RTM_GETLINK: no link in reply"));
        };
        let (mut mac, mut mtu, mut rx_queues) = (None, None, 1);
        for a in &l.attributes {
            match a {
                LinkAttribute::Address(a) => mac = <Mac>::try_from(a.as_slice()).ok(),
                LinkAttribute::Mtu(m) => mtu = Some(*m),
                LinkAttribute::NumRxQueues(n) => rx_queues = (*n).max(1),
                _ => {}
            }
        }
        Ok(LinkInfo {
            ifindex: l.header.index,
            mac: mac.ok_or_else(|| invalid("interface has no 6-byte MAC address"))?,
            mtu: mtu.ok_or_else(|| invalid("RTM_GETLINK: reply without IFLA_MTU"))?,
            rx_queues,
        })
    }

    /// The IPv4 addresses configured on interface `ifindex` (IFA_LOCAL, else IFA_ADDRESS).
    pub fn link_addrs(&mut self, ifindex: u32) -> io::Result<Vec<Ipv4Addr>> {
        let ips = self.link_ips(ifindex, AddressFamily::Inet)?;
        Ok(ips
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect())
    }

    /// The IPv6 addresses configured on interface `ifindex` (IFA_LOCAL, else IFA_ADDRESS).
    pub fn link_addrs6(&mut self, ifindex: u32) -> io::Result<Vec<Ipv6Addr>> {
        let ips = self.link_ips(ifindex, AddressFamily::Inet6)?;
        Ok(ips
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect())
    }

    /// One RTM_GETADDR dump of `family`: each address of interface `ifindex` (IFA_LOCAL, else
    /// IFA_ADDRESS).
    fn link_ips(&mut self, ifindex: u32, family: AddressFamily) -> io::Result<Vec<IpAddr>> {
        let mut msg = AddressMessage::default();
        msg.header.family = family;
        let replies = self.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            if a.header.index != ifindex {
                continue;
            }
            let (mut local, mut addr) = (None, None);
            for at in &a.attributes {
                match at {
                    AddressAttribute::Local(l) => local = Some(*l),
                    AddressAttribute::Address(l) => addr = Some(*l),
                    _ => {}
                }
            }
            if let Some(ip) = local.or(addr) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    /// Sends one request and collects the replies. Non-dump requests carry NLM_F_ACK and end at
    /// the kernel's ACK (NLMSG_ERROR with code 0); dumps end at NLMSG_DONE. A NACK becomes the
    /// matching `io::Error` (raw OS error code).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut tx = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut tx);
        self.sock.send(&tx, 0)?;

        let mut out = Vec::new();
        let mut seen = 0usize;
        loop {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0)?;
            if n > self.buf.len() {
                return Err(invalid("netlink reply truncated"));
            }
            let mut off = 0;
            while off < self.buf.len() {
                seen += 1;
                if seen > MAX_REPLY_MESSAGES {
                    return Err(invalid("netlink reply too long"));
                }
                let chunk = &self.buf[off..];
                let len = NetlinkBuffer::new_checked(chunk)
                    .map_err(|_| invalid("malformed netlink header"))?
                    .length() as usize;
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&chunk[..len])
                    .map_err(|e| invalid(&format!("undecodable netlink message: {e}")))?;
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue; // A late reply to an earlier, timed-out request.
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }
}

/// One main-table route of a dump ([`Netlink::route_dump`], [`Netlink::route_dump6`]) before
/// it is typed per family: `gw` None = on-link; `drop` for blackhole, unreachable, prohibit.
struct MainRoute<A> {
    dst: A,
    prefix_len: u8,
    metric: u32,
    gw: Option<A>,
    drop: bool,
}
