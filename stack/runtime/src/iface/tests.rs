//! Two interfaces over an in-memory link, virtual time: whole-stack runs through the wire
//! layer, the neighbour cache and the application API.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::app::client::Client;
use crate::app::close_first::CloseFirst;
use crate::app::echo::Echo;
use crate::app::server::Server;
use crate::app::AppError;
use crate::phy::MemoryDevice;
use crate::tcp::endpoint::EndpointSecrets;
use crate::tcp::{ConnId, FourTuple, TcpConfig};
use crate::time::Duration;

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC_A: Mac = [2, 0, 0, 0, 0, 0xa];
const MAC_B: Mac = [2, 0, 0, 0, 0, 0xb];

type Iface = Interface<MemoryDevice, StaticLink>;

fn pair(b_knows_a: bool) -> (Iface, Iface) {
    let (da, db) = MemoryDevice::pair(1514, 256);
    let mk = |dev, addr, mac, peer: Option<(Ipv4Addr, Mac)>, seed| {
        let ep = Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(seed),
            40000..=40999,
        );
        let link = StaticLink::new(peer.as_slice());
        Interface::new(dev, link, ep, InterfaceConfig::new(addr, mac))
    };
    let a = mk(da, A, MAC_A, Some((B, MAC_B)), 1);
    let b = mk(db, B, MAC_B, b_knows_a.then_some((A, MAC_A)), 2);
    (a, b)
}

/// Polls both sides every millisecond of virtual time until `done` or `limit`.
fn run(
    a: &mut Iface,
    app_a: &mut dyn App,
    b: &mut Iface,
    app_b: &mut dyn App,
    limit: Duration,
    mut done: impl FnMut(&Iface, &Iface) -> bool,
) -> Instant {
    let mut now = Instant::from_secs(1);
    a.start(now, app_a);
    b.start(now, app_b);
    let end = now + limit;
    while now < end && !done(a, b) {
        a.poll(now, app_a);
        b.poll(now, app_b);
        now += Duration::from_millis(1);
    }
    now
}

#[test]
fn echo_round_trip_and_passive_close() {
    let (mut a, mut b) = pair(true);
    let mut server = Server::new(128);
    server.add(7, Box::<Echo>::default());
    let msg: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut client = Client::new(SocketAddrV4::new(A, 7), &msg);
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client,
        Duration::from_secs(10),
        |_, _| false,
    );
    assert_eq!(client.outcome(), Some(Ok(&msg[..])));
    assert!(server.listen_errors.is_empty());
    assert_eq!(server.accepted, 1);
    // The client closed first: it holds TIME-WAIT; the server side is gone.
    assert_eq!(b.endpoint().time_wait_count(), 1);
    assert_eq!(a.endpoint().connection_count(), 0);
    assert_eq!(a.endpoint().time_wait_count(), 0);
    assert_eq!(server.connections(), 0);
    let s = a.stats();
    assert_eq!((s.rx_checksum, s.rx_not_ours, s.tx_full), (0, 0, 0));
    // Full-sized segments fit a 1514-byte frame: with timestamps a segment carries
    // MSS - 12 = 1448 data bytes (RFC 6691 §2), not 1460 + 12 bytes of option.
    assert_eq!((s.tx_too_long, b.stats().tx_too_long), (0, 0));
    assert!(s.rx_segments > 30 && s.tx_segments > 30, "{s:?}");
}

#[test]
fn close_first_server_holds_time_wait() {
    let (mut a, mut b) = pair(true);
    let mut server = Server::new(128);
    server.add(9, Box::<CloseFirst>::default());
    let mut client = Client::reader(SocketAddrV4::new(A, 9), 16);
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client,
        Duration::from_secs(5),
        |a, _| a.endpoint().time_wait_count() == 1,
    );
    assert_eq!(a.endpoint().time_wait_count(), 1);
    assert_eq!(a.endpoint().connection_count(), 0);
    // The client read "bye\n" and the end of the stream, then closed (passive close).
    assert_eq!(client.outcome(), Some(Ok(&b"bye\n"[..])));
    assert_eq!(b.endpoint().time_wait_count(), 0);
    assert_eq!(b.endpoint().connection_count(), 0);
}

#[test]
fn connect_to_closed_port_is_refused() {
    let (mut a, mut b) = pair(true);
    let mut server = Server::new(128);
    let mut client = Client::new(SocketAddrV4::new(A, 81), b"hello");
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client,
        Duration::from_secs(5),
        |_, _| false,
    );
    assert_eq!(client.outcome(), Some(Err(AppError::ConnectionRefused)));
    assert_eq!(a.endpoint().stats().rst_closed, 1);
    assert_eq!(b.endpoint().connection_count(), 0);
}

/// The server cannot resolve the client's MAC: its SYN-ACK is held in the neighbour cache;
/// the client's retransmitted SYN (from an on-link address with a pending entry) confirms the
/// MAC, which releases the held SYN-ACK, and the connection completes.
#[test]
fn held_syn_ack_released_by_learning_from_syn() {
    let (mut a, mut b) = pair(false);
    let mut server = Server::new(128);
    server.add(7, Box::<Echo>::default());
    let mut client = Client::new(SocketAddrV4::new(B, 7), b"hi");
    let end = run(
        &mut b,
        &mut server,
        &mut a,
        &mut client,
        Duration::from_secs(4),
        |_, _| false,
    );
    assert_eq!(client.outcome(), Some(Ok(&b"hi"[..])));
    let s = b.stats();
    assert_eq!(
        (s.tx_held, s.tx_released, s.tx_neigh_dropped),
        (1, 1, 0),
        "{s:?}"
    );
    assert_eq!(b.neigh().stats().learned, 1);
    assert_eq!(b.neigh().lookup(end, A), Lookup::Found(MAC_A));
}

#[test]
fn rejected_frames_counted_by_reason() {
    let (mut a, mut b) = pair(true);
    let mut server = Server::new(128);
    server.add(7, Box::<Echo>::default());
    let syn = TcpRepr {
        src_port: 5555,
        dst_port: 7,
        seq: crate::wire::SeqNum(1000),
        ack: crate::wire::SeqNum(0),
        flags: crate::wire::TcpFlags::SYN,
        window: 1000,
        urgent: 0,
        options: Default::default(),
        payload: &[],
    };
    let eth = eth_repr(b.config(), MAC_A);
    let dev = b.device_mut();
    // Not our address, a corrupted checksum, an ARP frame, a runt.
    for (dst, corrupt) in [(Ipv4Addr::new(198, 18, 0, 9), false), (A, true)] {
        let len = wire::tcp_frame_len(&syn);
        dev.transmit(len, |buf| {
            wire::emit_tcp_frame(buf, &eth, B, dst, 64, &syn);
            if corrupt {
                buf[len - 1] ^= 0xff;
            }
        })
        .unwrap();
    }
    dev.transmit(42, |buf| {
        buf.fill(0);
        buf[12] = 0x08;
        buf[13] = 0x06;
    })
    .unwrap();
    dev.transmit(10, |buf| buf.fill(0)).unwrap();
    dev.flush(Instant::ZERO);
    let now = Instant::from_secs(1);
    a.start(now, &mut server);
    a.poll(now, &mut server);
    let s = a.stats();
    assert_eq!(s.rx_frames, 4);
    assert_eq!(s.rx_not_ours, 1);
    assert_eq!(s.rx_checksum, 1);
    assert_eq!(s.rx_unsupported, 1);
    assert_eq!(s.rx_truncated, 1);
    assert_eq!(s.rx_segments, 0);
    assert_eq!(a.endpoint().stats().segments_in, 0);
}

/// Two workers serve A (replicated listeners); every frame from the client arrives on
/// worker 0's queue, but the client's port is chosen so that worker 1 owns the flow: worker
/// 0 hands every segment over, worker 1 processes them as if received and answers from its
/// own queue (relayed onto the same wire), and the echo completes.
#[test]
fn misdirected_flow_is_handed_to_its_owner() {
    use crate::handoff::{mesh, HandoffConfig};
    use crate::rss::{FlowOwner, DEFAULT_RSS_KEY};
    let owner = FlowOwner::new(DEFAULT_RSS_KEY, 2).with_ephemeral(61000, 61999);
    let port = (40000..=40999u16)
        .find(|&p| {
            owner.owner(&FourTuple::new(
                std::net::SocketAddrV4::new(A, 7),
                std::net::SocketAddrV4::new(B, p),
            )) == 1
        })
        .expect("some port is owned by worker 1");
    let (da, db) = MemoryDevice::pair(1514, 256);
    let (d1, mut relay) = MemoryDevice::pair(1514, 256);
    let server = |dev, seed, q| {
        let ep = Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(seed),
            owner.ephemeral_range(q),
        );
        let mut i = Interface::new(
            dev,
            StaticLink::new(&[(B, MAC_B)]),
            ep,
            InterfaceConfig::new(A, MAC_A),
        );
        i.set_shard(q, owner);
        i
    };
    let mut w0 = server(da, 1, 0);
    let mut w1 = server(d1, 2, 1);
    let mut hs = mesh(2, HandoffConfig::default()).into_iter();
    w0.set_handoff(hs.next().unwrap());
    w1.set_handoff(hs.next().unwrap());
    let mut b = Interface::new(
        db,
        StaticLink::new(&[(A, MAC_A)]),
        Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(3),
            port..=port,
        ),
        InterfaceConfig::new(B, MAC_B),
    );
    let mk_server = || {
        let mut s = Server::new(16);
        s.add(7, Box::<Echo>::default());
        s
    };
    let (mut s0, mut s1) = (mk_server(), mk_server());
    let msg = b"handed over\n".to_vec();
    let mut client = Client::new(SocketAddrV4::new(A, 7), &msg);
    let mut now = Instant::from_secs(1);
    w0.start(now, &mut s0);
    w1.start(now, &mut s1);
    b.start(now, &mut client);
    for _ in 0..5_000 {
        b.poll(now, &mut client);
        w0.poll(now, &mut s0);
        w1.poll(now, &mut s1);
        // Worker 1's frames leave on the same wire as worker 0's.
        let mut frames = Vec::new();
        relay.recv(now, 64, |f| frames.push(f.to_vec()));
        for f in frames {
            w0.device_mut()
                .transmit(f.len(), |buf| buf.copy_from_slice(&f))
                .expect("relay");
        }
        w0.device_mut().flush(now);
        if client.outcome().is_some() && b.endpoint().connection_count() == 0 {
            break;
        }
        now += Duration::from_millis(1);
    }
    assert_eq!(client.outcome(), Some(Ok(&msg[..])));
    let (st0, st1) = (w0.stats(), w1.stats());
    assert!(
        st0.handoff_sent >= 4,
        "SYN, ACK, data, FIN at least: {st0:?}"
    );
    assert_eq!(st0.rx_misdirected, st0.handoff_sent);
    assert_eq!(st0.handoff_dropped, 0);
    assert_eq!(st1.handoff_received, st0.handoff_sent);
    assert_eq!(st1.rx_frames, 0, "nothing arrived on worker 1's own queue");
    assert_eq!(w0.endpoint().stats().conns_opened, 0);
    assert_eq!(w1.endpoint().stats().conns_opened, 1);
    assert_eq!(s1.accepted, 1);
}

/// Reads what `source` sends; after `limit` bytes it half-closes and reads to the end.
struct Sink {
    remote: SocketAddrV4,
    limit: usize,
    conn: Option<crate::tcp::endpoint::ConnId>,
    got: usize,
    shut: bool,
    events: Vec<AppEvent>,
    done: bool,
}

impl App for Sink {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        self.conn = io.connect(self.remote).ok();
    }
    fn on_event(&mut self, io: &mut AppIo<'_>, c: crate::tcp::endpoint::ConnId, ev: AppEvent) {
        if !matches!(ev, AppEvent::Readable) {
            self.events.push(ev);
        }
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = io.recv(c, &mut buf) {
            assert!(buf[..n].iter().all(|&b| b == 0));
            self.got += n;
        }
        if self.got >= self.limit && !self.shut {
            self.shut = true;
            io.shutdown(c).unwrap();
        }
        match ev {
            AppEvent::PeerFin => io.close(c).unwrap(),
            AppEvent::Closed => self.done = true,
            _ => {}
        }
    }
    fn is_done(&self) -> bool {
        self.done
    }
}

#[test]
fn source_sends_until_peer_closes() {
    let (mut a, mut b) = pair(true);
    let mut server = Server::new(128);
    server.add(19, crate::app::server::AppKind::Source.build());
    let mut sink = Sink {
        remote: SocketAddrV4::new(A, 19),
        limit: 1 << 20,
        conn: None,
        got: 0,
        shut: false,
        events: Vec::new(),
        done: false,
    };
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut sink,
        Duration::from_secs(20),
        |_, _| false,
    );
    // It kept sending past the limit until our FIN reached it, then closed gracefully
    // (PeerFin, no Error), and the connection is gone on the server side.
    assert!(sink.got >= 1 << 20, "{}", sink.got);
    assert!(sink.done);
    assert_eq!(
        sink.events,
        [AppEvent::Connected, AppEvent::PeerFin, AppEvent::Closed]
    );
    assert_eq!(server.connections(), 0);
    assert_eq!(a.endpoint().connection_count(), 0);
}

/// Connects from an extra local address once started; records what it saw.
struct FromAddr {
    local: Ipv4Addr,
    conn: Option<ConnId>,
    connected: Option<FourTuple>,
}

impl App for FromAddr {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        self.conn = io.connect_from(self.local, SocketAddrV4::new(A, 7)).ok();
    }
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        if ev == AppEvent::Connected {
            self.connected = io.tuple(c);
        }
    }
}

/// `InterfaceConfig::extra_addrs`: segments to an extra address are ours, an active open may
/// use it (`AppIo::connect_from`); other addresses are still not ours.
#[test]
fn extra_address_connects_and_receives() {
    const B2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
    let (da, db) = MemoryDevice::pair(1514, 256);
    let ep = |seed| {
        Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(seed),
            40000..=40999,
        )
    };
    let link_a = StaticLink::new(&[(B, MAC_B), (B2, MAC_B)]);
    let mut a = Interface::new(da, link_a, ep(1), InterfaceConfig::new(A, MAC_A));
    let mut cfg_b = InterfaceConfig::new(B, MAC_B);
    cfg_b.extra_addrs = ExtraAddrs::new(&[B2]).unwrap();
    assert!(cfg_b.extra_addrs.contains(B2) && !cfg_b.extra_addrs.contains(A));
    assert_eq!(cfg_b.extra_addrs.iter().collect::<Vec<_>>(), vec![B2]);
    let mut b = Interface::new(db, StaticLink::new(&[(A, MAC_A)]), ep(2), cfg_b);
    let mut server = Server::new(128);
    server.add(7, Box::<Echo>::default());
    let mut client = FromAddr {
        local: B2,
        conn: None,
        connected: None,
    };
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client,
        Duration::from_secs(2),
        |_, _| false,
    );
    assert!(client.conn.is_some());
    let ends = client.connected.expect("connected from the extra address");
    assert_eq!((ends.local_ip(), ends.remote_ip()), (B2.into(), A.into()));
    assert_eq!(b.stats().rx_not_ours, 0);
    assert_eq!(server.accepted, 1);
    assert!(ExtraAddrs::new(&[B2; MAX_EXTRA_ADDRS + 1]).is_err());
}

const A6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const B6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

/// Dual-stack over the in-memory link: a's server listens on A and A6; b connects over
/// IPv6 and over IPv4. The IPv6 frames carry the connection's stable RFC 6437 flow label
/// and the hop limit, the MSS is 1440 (MTU 1500 - 60), and full segments fit the frame.
#[test]
fn dual_stack_echo_over_ipv6_and_ipv4() {
    let (mut a, mut b) = pair(true);
    for (i, me, peer, peer_mac) in [(&mut a, A6, B6, MAC_B), (&mut b, B6, A6, MAC_A)] {
        i.cfg.addrs6 = Addrs6::new(&[me]).unwrap();
        i.cfg.flow_label_secret = [7; 16];
        i.labels = wire::FlowLabels::new([7; 16]);
        i.link.insert(peer.into(), peer_mac);
    }
    let mut server = Server::new(128);
    server.add(7, Box::<Echo>::default());
    let msg: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut client = Client::new(std::net::SocketAddrV6::new(A6, 7, 0, 0), &msg);
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client,
        Duration::from_secs(10),
        |_, _| false,
    );
    assert_eq!(client.outcome(), Some(Ok(&msg[..])));
    assert_eq!(server.accepted, 1);
    assert_eq!(b.endpoint().time_wait_count(), 1);
    let s = a.stats();
    assert!(s.rx_segments6 > 30 && s.tx_segments6 > 30, "{s:?}");
    assert_eq!((s.tx_too_long, s.rx_not_ours, s.rx_checksum), (0, 0, 0));
    // The same server over IPv4.
    let mut client4 = Client::new(SocketAddrV4::new(A, 7), b"over ipv4");
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client4,
        Duration::from_secs(5),
        |_, _| false,
    );
    assert_eq!(client4.outcome(), Some(Ok(&b"over ipv4"[..])));
    assert_eq!(server.accepted, 2);
}

/// An outgoing IPv6 segment: EtherType 0x86dd, hop limit from the config, and the flow
/// label of its 4-tuple (RFC 6437 §3: stable for the flow, keyed so it is not guessable).
#[test]
fn ipv6_frame_header_fields() {
    let mut cfg = InterfaceConfig::new(A, MAC_A);
    cfg.hop_limit = 61;
    let labels = wire::FlowLabels::new([9; 16]);
    let seg = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: wire::SeqNum(1),
        ack: wire::SeqNum(2),
        flags: wire::TcpFlags::ACK,
        window: 100,
        urgent: 0,
        options: wire::TcpOptions::default(),
        payload: b"x",
    };
    let ip = IpOut::new(&cfg, &labels, A6.into(), B6.into(), &seg).unwrap();
    let mut buf = vec![0u8; ip.frame_len(&seg)];
    assert_eq!(
        ip.emit(&mut buf, &eth_repr(&cfg, MAC_B), &seg),
        14 + 40 + 21
    );
    let Ok(wire::AnyTcpFrame::V6(f)) = wire::parse_any_tcp_frame_with(&buf, true) else {
        panic!("not a TCP/IPv6 frame");
    };
    assert_eq!((f.ip.src_addr, f.ip.dst_addr, f.ip.hop_limit), (A6, B6, 61));
    assert_eq!(f.ip.flow_label, labels.tcp(A6, 80, B6, 40000));
    assert_ne!(f.ip.flow_label, labels.tcp(A6, 80, B6, 40001));
    assert_eq!((f.eth.dst_addr.0, f.tcp), (MAC_B, seg));
    assert!(IpOut::new(&cfg, &labels, A.into(), B6.into(), &seg).is_none());
}

/// Martian sources through the whole receive path (device -> wire -> endpoint), which a veth
/// test cannot send (the test network rules allow spoofed sources only from 198.18.0.0/15):
/// a SYN to a listener and an ACK to a closed port from 127/8, 0/8 or our own address are
/// dropped unanswered (no frame leaves, no neighbour is asked for) and counted
/// `martian_src_in`, as Linux drops them in ip_route_input_slow / fib_validate_source; the
/// same segments from the peer's real address are answered (SYN-ACK, RST).
#[test]
fn martian_sources_dropped_unanswered_through_the_device() {
    let (mut a, mut b) = pair(true);
    let mut server = Server::new(128);
    server.add(7, Box::<Echo>::default());
    let seg = |dst_port, flags| TcpRepr {
        src_port: 5555,
        dst_port,
        seq: crate::wire::SeqNum(1000),
        ack: crate::wire::SeqNum(77),
        flags,
        window: 1000,
        urgent: 0,
        options: Default::default(),
        payload: &[],
    };
    let segs = [
        seg(7, crate::wire::TcpFlags::SYN),
        seg(81, crate::wire::TcpFlags::ACK),
    ];
    let now = Instant::from_secs(1);
    a.start(now, &mut server);
    let eth = eth_repr(b.config(), MAC_A);
    let sources = [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 9, 9, 9),
        Ipv4Addr::new(0, 0, 0, 7),
        A,
    ];
    for (i, src) in sources.into_iter().enumerate() {
        let dev = b.device_mut();
        for s in &segs {
            dev.transmit(wire::tcp_frame_len(s), |buf| {
                wire::emit_tcp_frame(buf, &eth, src, A, 64, s);
            })
            .unwrap();
        }
        dev.flush(now);
        a.poll(now, &mut server);
        assert_eq!(b.device_mut().rx_pending(), 0, "{src}: nothing sent");
        let e = a.endpoint().stats();
        assert_eq!(e.martian_src_in, 2 * (i as u64 + 1), "{src}");
        assert_eq!((e.rst_closed, e.conns_opened), (0, 0), "{src}");
    }
    let s = a.stats();
    assert_eq!((s.rx_segments, s.tx_segments), (8, 0));
    assert_eq!(a.neigh().stats().solicits, 0, "no neighbour asked for");
    // The same two segments from B: a SYN-ACK and a RST.
    let dev = b.device_mut();
    for s in &segs {
        dev.transmit(wire::tcp_frame_len(s), |buf| {
            wire::emit_tcp_frame(buf, &eth, B, A, 64, s);
        })
        .unwrap();
    }
    dev.flush(now);
    a.poll(now, &mut server);
    assert_eq!(
        b.device_mut().rx_pending(),
        2,
        "answered from a real source"
    );
    assert_eq!(a.endpoint().stats().martian_src_in, 8);
}

/// The server side of a close-first exchange seen through a trace's tap (notes) and a
/// capture's tap at once: the trace's frames carry the endpoint's own states around each
/// segment (`cookies`: tcp_syncookies=2, the SYN-ACK and the ACK marked), the capture's
/// the same frames without notes.
fn traced_close_first(cookies: bool) -> Vec<(Dir, String)> {
    use crate::tcp::SynCookieMode;
    let (da, db) = MemoryDevice::pair(1514, 256);
    let cfg = TcpConfig {
        syncookies: if cookies {
            SynCookieMode::Always
        } else {
            SynCookieMode::WhenFull
        },
        ..TcpConfig::default()
    };
    let ep_a = Endpoint::new(cfg, EndpointSecrets::from_seed(1), 40000..=40999);
    let ep_b = Endpoint::new(
        TcpConfig::default(),
        EndpointSecrets::from_seed(2),
        40000..=40999,
    );
    let mut a = Interface::new(
        da,
        StaticLink::new(&[(B, MAC_B)]),
        ep_a,
        InterfaceConfig::new(A, MAC_A),
    );
    let mut b = Interface::new(
        db,
        StaticLink::new(&[(A, MAC_A)]),
        ep_b,
        InterfaceConfig::new(B, MAC_B),
    );
    let filter = |w: &str| tap::PktFilter::parse(&[w.to_string()]).unwrap();
    let (trace, traced) = Tap::new(filter("tcp"), 2048, 64);
    let (capture, captured) = Tap::new(filter("tcp"), 2048, 64);
    a.add_tap(trace.with_notes());
    a.add_tap(capture);
    let mut server = Server::new(128);
    server.add(9, Box::<CloseFirst>::default());
    let mut client = Client::reader(SocketAddrV4::new(A, 9), 16);
    run(
        &mut a,
        &mut server,
        &mut b,
        &mut client,
        Duration::from_secs(5),
        |a, _| a.endpoint().time_wait_count() == 1,
    );
    assert_eq!(client.outcome(), Some(Ok(&b"bye\n"[..])));
    let mut out = Vec::new();
    while let Some(f) = traced.queue.pop() {
        let c = captured
            .queue
            .pop()
            .expect("the capture has the same frames");
        assert_eq!((c.dir, &c.data, c.note), (f.dir, &f.data, None));
        let t = wire::parse_tcp_frame_with(&f.data, false).unwrap().tcp;
        let f_ = t.flags;
        let flags: String = [
            (f_.syn(), 'S'),
            (f_.fin(), 'F'),
            (f_.psh(), 'P'),
            (f_.ack(), '.'),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
        .collect();
        out.push((
            f.dir,
            format!("{flags} {}", f.note.expect("noted").comment()),
        ));
    }
    assert!(captured.queue.is_empty());
    out
}

/// RFC 9293 §3.5 Figure 13 from the server's side, as its endpoint saw it: LISTEN ->
/// SYN-RECEIVED at the SYN, ESTABLISHED at the ACK, FIN-WAIT-1 when its FIN (with "bye\n")
/// went out, TIME-WAIT at the client's FIN that acknowledged it, and the last ACK sent from
/// TIME-WAIT.
#[test]
fn a_trace_tap_carries_the_endpoints_states() {
    use Dir::*;
    let want = [
        (In, "S xdptcp: LISTEN -> SYN-RECEIVED"),
        (Out, "S. xdptcp: SYN-RECEIVED"),
        (In, ". xdptcp: SYN-RECEIVED -> ESTABLISHED"),
        (Out, "FP. xdptcp: FIN-WAIT-1"),
        (In, "F. xdptcp: FIN-WAIT-1 -> TIME-WAIT"),
        (Out, ". xdptcp: TIME-WAIT"),
    ];
    let want: Vec<(Dir, String)> = want.iter().map(|(d, s)| (*d, s.to_string())).collect();
    assert_eq!(traced_close_first(false), want);
}

/// tcp_syncookies=2 (RFC 4987 §3.6): the SYN leaves the listener in LISTEN (no state), the
/// SYN-ACK goes out stateless with a cookie, and the ACK that returns it creates the
/// connection straight in ESTABLISHED: both are marked.
#[test]
fn a_trace_tap_marks_syn_cookies() {
    use Dir::*;
    let want = [
        (In, "S xdptcp: LISTEN"),
        (Out, "S. xdptcp: LISTEN, SYN cookie"),
        (In, ". xdptcp: LISTEN -> ESTABLISHED, SYN cookie"),
        (Out, "FP. xdptcp: FIN-WAIT-1"),
        (In, "F. xdptcp: FIN-WAIT-1 -> TIME-WAIT"),
        (Out, ". xdptcp: TIME-WAIT"),
    ];
    let want: Vec<(Dir, String)> = want.iter().map(|(d, s)| (*d, s.to_string())).collect();
    assert_eq!(traced_close_first(true), want);
}

/// An ICMP port unreachable answering worker 1's SYN arrives on worker 0's queue (RSS hashed
/// the ICMP packet, not the flow): worker 0 finds the quoted flow's owner and hands the frame
/// over; worker 1's connect fails with ECONNREFUSED at once (Linux tcp_v4_err in SYN-SENT).
/// ICMP that is malformed or not an error about TCP is dropped and counted by reason.
#[test]
fn icmp_error_is_handed_to_the_quoted_flows_owner() {
    use crate::handoff::{mesh, HandoffConfig};
    use crate::rss::{FlowOwner, DEFAULT_RSS_KEY};
    use crate::wire::{DstUnreachable, Icmpv4Message};
    let owner = FlowOwner::new(DEFAULT_RSS_KEY, 2).with_ephemeral(61000, 61999);
    let (d0, mut wire0) = MemoryDevice::pair(1514, 256);
    let (d1, mut wire1) = MemoryDevice::pair(1514, 256);
    let worker = |dev, seed, q| {
        let ep = Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(seed),
            owner.ephemeral_range(q),
        );
        let mut i = Interface::new(
            dev,
            StaticLink::new(&[(B, MAC_B)]),
            ep,
            InterfaceConfig::new(A, MAC_A),
        );
        i.set_shard(q, owner);
        i
    };
    let mut w0 = worker(d0, 1, 0);
    let mut w1 = worker(d1, 2, 1);
    let mut hs = mesh(2, HandoffConfig::default()).into_iter();
    w0.set_handoff(hs.next().unwrap());
    w1.set_handoff(hs.next().unwrap());
    let mut idle = Server::new(16);
    let mut client = Client::new(SocketAddrV4::new(B, 81), b"x");
    let now = Instant::from_secs(1);
    w0.start(now, &mut idle);
    w1.start(now, &mut client);
    w1.poll(now, &mut client);
    let mut syn = Vec::new();
    wire1.recv(now, 64, |f| syn = f.to_vec());
    let t = wire::parse_tcp_frame(&syn).unwrap();
    assert!(t.tcp.flags.syn());
    // B's kernel answers: port unreachable quoting the SYN's IPv4 header and 8 bytes.
    let eth = eth_repr(&InterfaceConfig::new(B, MAC_B), MAC_A);
    let unreach = Icmpv4Message::DstUnreachable {
        code: DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
    };
    let quote = syn[14..14 + 28].to_vec();
    let mut frames = Vec::new();
    let mut buf = [0u8; 128];
    let n = wire::icmpv4::emit_icmpv4_frame(&mut buf, &eth, B, A, &unreach, &quote);
    frames.push(buf[..n].to_vec());
    let mut bad = buf[..n].to_vec();
    bad[n - 1] ^= 1; // ICMP checksum
    frames.push(bad);
    let echo = Icmpv4Message::TimeExceeded(crate::wire::TimeExceeded::TtlExceeded);
    let n2 = wire::icmpv4::emit_icmpv4_frame(&mut buf, &eth, B, A, &echo, &quote);
    let mut echo_req = buf[..n2].to_vec();
    echo_req[14 + 20] = 8; // echo request: the kernel's, never ours
    let c = crate::wire::checksum::complement(crate::wire::checksum::data(&{
        let mut m = echo_req[14 + 20..].to_vec();
        m[2..4].copy_from_slice(&[0, 0]);
        m
    }));
    echo_req[14 + 22..14 + 24].copy_from_slice(&c.to_be_bytes());
    frames.push(echo_req);
    for f in &frames {
        wire0.transmit(f.len(), |b| b.copy_from_slice(f)).unwrap();
    }
    wire0.flush(now);
    w0.poll(now, &mut idle);
    let s0 = *w0.stats();
    assert_eq!((s0.rx_misdirected, s0.handoff_sent), (1, 1));
    assert_eq!((s0.rx_checksum, s0.rx_unsupported), (1, 1));
    w1.poll(now, &mut client);
    assert_eq!(client.outcome(), Some(Err(AppError::ConnectionRefused)));
    assert_eq!(w1.stats().rx_icmp, 1);
    assert_eq!(w1.endpoint().stats().icmp.fatal, 1);
    let mut after = 0;
    wire1.recv(now, 64, |_| after += 1);
    assert_eq!(after, 0, "nothing answers an ICMP error");
}

/// An ICMPv6 error from `src` to `dst`: type `t`, `code`, the 4-byte `rest` and the quoted
/// packet, in an Ethernet frame from MAC_B to MAC_A, its checksum over the pseudo-header.
fn icmpv6_frame(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    t: u8,
    code: u8,
    rest: u32,
    quote: &[u8],
) -> Vec<u8> {
    use crate::wire::checksum;
    let mut msg = vec![t, code, 0, 0];
    msg.extend_from_slice(&rest.to_be_bytes());
    msg.extend_from_slice(quote);
    let ph = checksum::pseudo_header_v6(src, dst, 58, msg.len() as u32);
    let c = checksum::complement(checksum::fold(ph as u64 + checksum::data(&msg) as u64));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&msg);
    f
}

/// As over IPv4: an ICMPv6 port unreachable (RFC 4443 §3.1 code 4) answering worker 1's
/// IPv6 SYN arrives on worker 0's queue, which hands it to the quoted flow's owner; worker
/// 1's connect fails with ECONNREFUSED (Linux tcp_v6_err in SYN-SENT). A bad ICMPv6
/// checksum is counted `rx_checksum`, an echo request (the kernel's) `rx_unsupported`, an
/// error about an address not ours `rx_not_ours`.
#[test]
fn icmpv6_error_is_handed_to_the_quoted_flows_owner() {
    use crate::handoff::{mesh, HandoffConfig};
    use crate::rss::{FlowOwner, DEFAULT_RSS_KEY};
    let owner = FlowOwner::new(DEFAULT_RSS_KEY, 2).with_ephemeral(61000, 61999);
    let (d0, mut wire0) = MemoryDevice::pair(1514, 256);
    let (d1, mut wire1) = MemoryDevice::pair(1514, 256);
    let worker = |dev, seed, q| {
        let ep = Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(seed),
            owner.ephemeral_range(q),
        );
        let mut i = Interface::new(
            dev,
            StaticLink::new(&[(B, MAC_B)]),
            ep,
            InterfaceConfig::new(A, MAC_A),
        );
        i.cfg.addrs6 = Addrs6::new(&[A6]).unwrap();
        i.link.insert(B6.into(), MAC_B);
        i.set_shard(q, owner);
        i
    };
    let mut w0 = worker(d0, 1, 0);
    let mut w1 = worker(d1, 2, 1);
    let mut hs = mesh(2, HandoffConfig::default()).into_iter();
    w0.set_handoff(hs.next().unwrap());
    w1.set_handoff(hs.next().unwrap());
    let mut idle = Server::new(16);
    let mut client = Client::new(std::net::SocketAddrV6::new(B6, 81, 0, 0), b"x");
    let now = Instant::from_secs(1);
    w0.start(now, &mut idle);
    w1.start(now, &mut client);
    w1.poll(now, &mut client);
    let mut syn = Vec::new();
    wire1.recv(now, 64, |f| syn = f.to_vec());
    let Ok(wire::AnyTcpFrame::V6(t)) = wire::parse_any_tcp_frame_with(&syn, true) else {
        panic!("not a TCP/IPv6 frame");
    };
    assert!(t.tcp.flags.syn());
    // B's kernel answers: port unreachable quoting the SYN (IPv6 header and TCP header).
    let quote = &syn[14..14 + 40 + 20];
    let good = icmpv6_frame(B6, A6, 1, 4, 0, quote);
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    let echo = icmpv6_frame(B6, A6, 128, 0, 0, quote);
    let other = std::net::Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 9);
    let not_ours = icmpv6_frame(B6, other, 1, 4, 0, quote);
    for f in [&good, &bad, &echo, &not_ours] {
        wire0.transmit(f.len(), |b| b.copy_from_slice(f)).unwrap();
    }
    wire0.flush(now);
    w0.poll(now, &mut idle);
    let s0 = *w0.stats();
    assert_eq!((s0.rx_misdirected, s0.handoff_sent), (1, 1), "{s0:?}");
    assert_eq!(
        (s0.rx_checksum, s0.rx_unsupported, s0.rx_not_ours),
        (1, 1, 1)
    );
    w1.poll(now, &mut client);
    assert_eq!(client.outcome(), Some(Err(AppError::ConnectionRefused)));
    assert_eq!(w1.stats().rx_icmp, 1);
    assert_eq!(w1.endpoint().stats().icmp.fatal, 1);
    let mut after = 0;
    wire1.recv(now, 64, |_| after += 1);
    assert_eq!(after, 0, "nothing answers an ICMP error");
}

/// An IPv6-only interface (no IPv4 address): its client connects over IPv6, and an ICMPv6
/// Parameter Problem (RFC 4443 §3.4, code 1, pointer 6) quoting its SYN fails the connect
/// with EPROTO as Linux's tcp_v6_err does in SYN-SENT, counted `rx_icmp6_param_problem`
/// (and `rx_icmp`). A TCP/IPv4 segment to what would be its IPv4 address is not ours; an
/// IPv4 connect or listen has no address to use.
#[test]
fn ipv6_only_interface_and_parameter_problem() {
    let (dev, mut wire) = MemoryDevice::pair(1514, 256);
    let mut cfg = InterfaceConfig::with_addr(None, MAC_A);
    cfg.addrs6 = Addrs6::new(&[A6]).unwrap();
    let ep = Endpoint::new(
        TcpConfig::default(),
        EndpointSecrets::from_seed(3),
        61000..=61999,
    );
    let mut i = Interface::new(dev, StaticLink::new(&[(B, MAC_B)]), ep, cfg);
    i.link.insert(B6.into(), MAC_B);
    let now = Instant::from_secs(1);
    {
        let mut io = i.app_io(now);
        assert_eq!(io.local_addr(), None);
        let v4 = std::net::SocketAddrV4::new(B, 80);
        assert_eq!(
            io.connect(v4),
            Err(AppError::Connect(
                crate::tcp::endpoint::ConnectError::InvalidAddress
            ))
        );
        assert_eq!(
            io.connect_any(v4.into()),
            Err(AppError::Connect(
                crate::tcp::endpoint::ConnectError::InvalidAddress
            ))
        );
        // `listen` takes the first IPv6 address.
        io.listen(7, 4).unwrap();
    }
    let mut client = Client::new(std::net::SocketAddrV6::new(B6, 81, 0, 0), b"x");
    i.start(now, &mut client);
    i.poll(now, &mut client);
    let mut syn = Vec::new();
    wire.recv(now, 64, |f| syn = f.to_vec());
    let Ok(wire::AnyTcpFrame::V6(t)) = wire::parse_any_tcp_frame_with(&syn, true) else {
        panic!("not a TCP/IPv6 frame");
    };
    assert!(t.tcp.flags.syn());
    assert_eq!(t.ip.src_addr, A6);
    // A's "IPv4 address" (the interface has none): not ours.
    let v4_syn = TcpRepr {
        src_port: 5555,
        dst_port: 7,
        seq: crate::wire::SeqNum(1000),
        ack: crate::wire::SeqNum(0),
        flags: crate::wire::TcpFlags::SYN,
        window: 1000,
        urgent: 0,
        options: Default::default(),
        payload: &[],
    };
    let eth = eth_repr(i.config(), MAC_B);
    let len = wire::tcp_frame_len(&v4_syn);
    wire.transmit(len, |buf| {
        wire::emit_tcp_frame(buf, &eth, B, A, 64, &v4_syn);
    })
    .unwrap();
    let pp = icmpv6_frame(B6, A6, 4, 1, 6, &syn[14..14 + 40 + 20]);
    wire.transmit(pp.len(), |b| b.copy_from_slice(&pp)).unwrap();
    wire.flush(now);
    i.poll(now, &mut client);
    let s = param_problem_failed_connect(&i, &client, &mut wire, now);
    assert_eq!(
        (s.rx_not_ours, s.rx_icmp, s.rx_icmp6_param_problem),
        (1, 1, 1),
        "{s:?}"
    );
}

/// After a Parameter Problem (either family) quoting `client`'s SYN: its connect failed
/// with EPROTO (Linux `tcp_v4_err` / `tcp_v6_err` in SYN-SENT), the endpoint counted one
/// fatal error, and nothing answered (no RST, no ICMP). Returns the interface's counters.
fn param_problem_failed_connect(
    i: &Interface<MemoryDevice, StaticLink>,
    client: &Client,
    wire: &mut MemoryDevice,
    now: Instant,
) -> IfaceStats {
    assert_eq!(
        client.outcome(),
        Some(Err(AppError::Unreachable(
            crate::tcp::Unreachable::ProtocolError
        )))
    );
    assert_eq!(i.endpoint().stats().icmp.fatal, 1);
    let mut after = 0;
    wire.recv(now, 64, |_| after += 1);
    assert_eq!(after, 0, "nothing answers");
    *i.stats()
}

/// An ICMPv4 Parameter Problem (RFC 792 type 12, RFC 1108 code 1 "missing a required
/// option", pointer 0) from a router on the path quoting the client's SYN fails the connect
/// at once with EPROTO as Linux's tcp_v4_err does in SYN-SENT, counted
/// `rx_icmp_param_problem` (and `rx_icmp`). One with a code no RFC assigns (3) is not an
/// error the stack acts on: `rx_unsupported`, and the connect is not touched by it.
#[test]
fn icmpv4_parameter_problem_fails_connect() {
    use crate::wire::{Icmpv4Message, ParamProblem};
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
    let (dev, mut wire) = MemoryDevice::pair(1514, 256);
    let ep = Endpoint::new(
        TcpConfig::default(),
        EndpointSecrets::from_seed(4),
        61000..=61999,
    );
    let mut i = Interface::new(
        dev,
        StaticLink::new(&[(B, MAC_B)]),
        ep,
        InterfaceConfig::new(A, MAC_A),
    );
    let mut client = Client::new(SocketAddrV4::new(B, 81), b"x");
    let now = Instant::from_secs(1);
    i.start(now, &mut client);
    i.poll(now, &mut client);
    let mut syn = Vec::new();
    wire.recv(now, 64, |f| syn = f.to_vec());
    assert!(wire::parse_tcp_frame(&syn).unwrap().tcp.flags.syn());
    let eth = eth_repr(&InterfaceConfig::new(ROUTER, MAC_B), MAC_A);
    let quote = syn[14..14 + 28].to_vec();
    let pp = Icmpv4Message::ParamProblem {
        code: ParamProblem::MissingOption,
        pointer: 0,
    };
    let mut buf = [0u8; 128];
    let n = wire::icmpv4::emit_icmpv4_frame(&mut buf, &eth, ROUTER, A, &pp, &quote);
    let mut code3 = buf[..n].to_vec();
    code3[14 + 20 + 1] = 3;
    code3[14 + 22..14 + 24].copy_from_slice(&[0, 0]);
    let c = crate::wire::checksum::complement(crate::wire::checksum::data(&code3[14 + 20..]));
    code3[14 + 22..14 + 24].copy_from_slice(&c.to_be_bytes());
    for f in [code3, buf[..n].to_vec()] {
        wire.transmit(f.len(), |b| b.copy_from_slice(&f)).unwrap();
        wire.flush(now);
        i.poll(now, &mut client);
    }
    let s = param_problem_failed_connect(&i, &client, &mut wire, now);
    assert_eq!(
        (s.rx_unsupported, s.rx_icmp, s.rx_icmp_param_problem),
        (1, 1, 1),
        "{s:?}"
    );
}
