//! ICMP errors for the stack's flows, with real Linux routers and hosts (root only):
//!
//! - Path MTU discovery (RFC 1191): stack -- router -- Linux peer (`harness::RoutedPath`),
//!   the router's link to the peer has MTU 1280. The stack sends 1500-byte frames with DF;
//!   the router answers each too-big one with ICMP "fragmentation needed" (next-hop MTU
//!   1280); the XDP program steers it to the stack, which lowers its path MTU and resends at
//!   the new size, and an 8 MiB transfer to the peer arrives byte-exact. (The peer's route
//!   back advertises MSS 1460 (`advmss`), so the handshake alone does not avoid the small
//!   link: only the ICMP can.)
//! - The same over IPv6 (RFC 8201): the path with 2001:2::/48 addresses besides IPv4
//!   (`RoutedPath::add_ipv6`); the router answers with ICMPv6 Packet Too Big (MTU 1280), the
//!   XDP program steers it to the stack (steer6.h), whose MSS becomes 1280 - 60 = 1220, and
//!   8 MiB reach the peer byte-exact (the peer's IPv6 route back advertises MSS 1440).
//! - A black hole: the same path with the router's ICMP errors dropped; with
//!   `tcp_mtu_probing = 1` the stack lowers its MSS after repeated timeouts (RFC 4821's
//!   fallback, as Linux) and the transfer completes.
//! - Port unreachable: a Linux host whose nftables rejects a port with ICMP port
//!   unreachable. The stack's connect fails with "connection refused" at once (Linux
//!   tcp_v4_err in SYN-SENT), exactly as a Linux client's connect to the same port does.
//!
//! The stack runs in-process (a worker thread in the stack namespace, `xdptcp::stack::Stack`
//! as `xdptcp serve` sets it up). Each test makes its own namespaces (per-run names, removed
//! on drop, also on panic); every wait is bounded in time.
//!
//! Run (as root): `cargo test --release -p xdptcp --test veth_icmp -- --test-threads=1`.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream};
use std::time::Duration;

#[path = "common/stack_run.rs"]
mod stack_run;
use stack_run::{run_stack_dual, LIMIT};
#[path = "common/stream.rs"]
mod stream;
use stream::{peer_accept, read_checked, BulkSender};

use xdptcp::app::client::Client;
use xdptcp::app::{App, AppError};
use xdptcp::tcp::TcpConfig;
use xdptcp::worker::WorkerSnapshot;
use xdptcp_harness::{
    require_root, RoutedPath, VethOptions, VethPair, PEER_ADDR, ROUTED_PEER_ADDR,
    ROUTED_PEER_ADDR6, ROUTED_STACK_ADDR, ROUTED_STACK_ADDR6, ROUTER_PEER_SIDE, ROUTER_PEER_SIDE6,
    STACK_ADDR,
};
use xdptcp_harness::{PEER_ADDR6, STACK_ADDR6};

const MIB: usize = 1 << 20;

/// Runs `app` on one worker of a stack on `ifname` (in namespace `ns`, address `addr`)
/// until it is done or `LIMIT` passes; returns the last snapshot and the app.
fn run_stack<A: App + Send + 'static>(
    ns: &str,
    ifname: &str,
    addr: std::net::Ipv4Addr,
    tcp: TcpConfig,
    app: A,
) -> (WorkerSnapshot, A) {
    run_stack_dual(ns, ifname, addr, &[], tcp, app)
}

/// A Linux sink in the peer namespace of `path` on `port`: accepts one connection, checks
/// every byte against the stream, returns how many came before EOF. Listening on return.
fn peer_sink(path: &RoutedPath, port: u16) -> std::thread::JoinHandle<std::io::Result<usize>> {
    peer_sink_on(path, ROUTED_PEER_ADDR.into(), port)
}

/// [`peer_sink`] on the peer's address `addr` (either family).
fn peer_sink_on(
    path: &RoutedPath,
    addr: IpAddr,
    port: u16,
) -> std::thread::JoinHandle<std::io::Result<usize>> {
    peer_accept(&path.peer_ns, addr, port, |mut s| {
        let mut got = 0;
        read_checked(&mut s, &mut got, None)?;
        Ok(got)
    })
}

/// The small link on the peer's side too, with the peer's route back still advertising MSS
/// 1460: the handshake alone does not avoid the small link.
fn small_link_at_peer(path: &RoutedPath) {
    path.run_in_peer(&["ip", "link", "set", &path.peer_if, "mtu", "1280"])
        .expect("peer MTU");
    let via = ROUTER_PEER_SIDE.to_string();
    path.run_in_peer(&[
        "ip",
        "route",
        "replace",
        "198.18.0.0/24",
        "via",
        &via,
        "advmss",
        "1460",
    ])
    .expect("peer route with advmss");
}

/// RFC 1191 through a real Linux router: the stack's 1500-byte DF segments meet a 1280-byte
/// link, the router's "fragmentation needed" lowers the stack's path MTU, and 8 MiB reach
/// the peer byte-exact.
#[test]
fn frag_needed_from_a_router_lowers_the_path_mtu() {
    require_root();
    let path = RoutedPath::new(1280).expect("three namespaces with a router");
    small_link_at_peer(&path);
    const PORT: u16 = 5201;
    const TOTAL: usize = 8 * MIB;
    let sink = peer_sink(&path, PORT);
    let (snap, app) = run_stack(
        &path.stack_ns,
        &path.stack_if,
        ROUTED_STACK_ADDR,
        TcpConfig::default(),
        BulkSender::new(SocketAddrV4::new(ROUTED_PEER_ADDR, PORT), TOTAL),
    );
    let got = sink.join().expect("sink thread");
    assert_eq!(app.error, None, "{:?}", snap.endpoint.icmp);
    assert!(app.done, "the transfer did not end within {LIMIT:?}");
    assert_eq!(got.expect("peer read the stream"), TOTAL);
    let icmp = snap.endpoint.icmp;
    assert!(icmp.pmtu_lowered >= 1, "{icmp:?}");
    assert!(snap.iface.rx_icmp >= 1, "{:?}", snap.iface);
    assert_eq!(icmp.fatal, 0, "{icmp:?}");
}

/// RFC 8201 through a real Linux router over IPv6: the stack's 1500-byte packets (IPv6
/// never fragments in transit) meet a 1280-byte link, the router's ICMPv6 Packet Too Big
/// lowers the stack's path MTU to 1280 (MSS 1220), and 8 MiB reach the peer byte-exact.
#[test]
fn packet_too_big_from_an_ipv6_router_lowers_the_path_mtu() {
    require_root();
    let path = RoutedPath::new(1280).expect("three namespaces with a router");
    path.add_ipv6().expect("IPv6 on the path");
    small_link_at_peer(&path);
    // The peer's IPv6 route back advertises MSS 1440 (1500 - 60), not 1220.
    let via = ROUTER_PEER_SIDE6.to_string();
    path.run_in_peer(&[
        "ip",
        "-6",
        "route",
        "replace",
        "2001:2::/64",
        "via",
        &via,
        "advmss",
        "1440",
    ])
    .expect("peer IPv6 route with advmss");
    const PORT: u16 = 5203;
    const TOTAL: usize = 8 * MIB;
    let sink = peer_sink_on(&path, ROUTED_PEER_ADDR6.into(), PORT);
    let (snap, app) = run_stack_dual(
        &path.stack_ns,
        &path.stack_if,
        ROUTED_STACK_ADDR,
        &[ROUTED_STACK_ADDR6],
        TcpConfig::default(),
        BulkSender::new(SocketAddrV6::new(ROUTED_PEER_ADDR6, PORT, 0, 0), TOTAL),
    );
    let got = sink.join().expect("sink thread");
    assert_eq!(app.error, None, "{:?}", snap.endpoint.icmp);
    assert!(app.done, "the transfer did not end within {LIMIT:?}");
    assert_eq!(got.expect("peer read the stream"), TOTAL);
    let icmp = snap.endpoint.icmp;
    assert!(icmp.pmtu_lowered >= 1, "{icmp:?}");
    assert!(snap.iface.rx_icmp >= 1, "{:?}", snap.iface);
    assert_eq!(icmp.fatal, 0, "{icmp:?}");
}

/// The same port of a Linux host, rejected by nftables with ICMP port unreachable: a Linux
/// client's connect fails with ECONNREFUSED, and so does the stack's, without waiting for
/// SYN retries (the endpoint counts the error as fatal; no RST was involved).
#[test]
fn port_unreachable_refuses_connect_like_linux() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    const PORT: u16 = 5003;
    for cmd in [
        &["nft", "add", "table", "ip", "xtest"][..],
        &[
            "nft",
            "add",
            "chain",
            "ip",
            "xtest",
            "inq",
            "{ type filter hook input priority 0 ; }",
        ],
        &[
            "nft",
            "add",
            "rule",
            "ip",
            "xtest",
            "inq",
            "tcp",
            "dport",
            "5003",
            "reject",
            "with",
            "icmp",
            "type",
            "port-unreachable",
        ],
    ] {
        pair.run_in_peer(cmd)
            .expect("nftables in the peer namespace");
    }
    // Linux's own client, from the stack's namespace (outside the stack's reserved ports).
    let linux = pair
        .in_stack(|| {
            TcpStream::connect_timeout(
                &SocketAddr::from((PEER_ADDR, PORT)),
                Duration::from_secs(10),
            )
        })
        .expect("entering the stack namespace");
    let e = linux.expect_err("Linux's connect must fail");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // The stack.
    let (snap, client) = run_stack(
        &pair.stack_ns,
        &pair.stack_if,
        STACK_ADDR,
        TcpConfig::default(),
        Client::new(SocketAddrV4::new(PEER_ADDR, PORT), b"x"),
    );
    assert_eq!(client.outcome(), Some(Err(AppError::ConnectionRefused)));
    let icmp = snap.endpoint.icmp;
    assert_eq!((icmp.fatal, icmp.errors_in), (1, 1), "{icmp:?}");
    assert_eq!(snap.iface.rx_icmp, 1);
    assert_eq!(snap.endpoint.flow.retrans_segs, 0, "no SYN retransmission");
}

/// The IPv6 twin of [`port_unreachable_refuses_connect_like_linux`]: nftables in the peer
/// namespace rejects the port with an ICMPv6 port unreachable (RFC 4443 §3.1 code 4). Linux
/// (from the stack's namespace) gets ECONNREFUSED; so must the stack, at once, without a
/// SYN retransmission (RFC 5461 §4.1: a hard error during the handshake aborts it).
#[test]
fn ipv6_port_unreachable_refuses_connect_like_linux() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    pair.add_ipv6().expect("adding the IPv6 addresses");
    const PORT: u16 = 5004;
    for cmd in [
        &["nft", "add", "table", "ip6", "xtest6"][..],
        &[
            "nft",
            "add",
            "chain",
            "ip6",
            "xtest6",
            "inq",
            "{ type filter hook input priority 0 ; }",
        ],
        &[
            "nft",
            "add",
            "rule",
            "ip6",
            "xtest6",
            "inq",
            "tcp",
            "dport",
            "5004",
            "reject",
            "with",
            "icmpv6",
            "type",
            "port-unreachable",
        ],
    ] {
        pair.run_in_peer(cmd)
            .expect("nftables in the peer namespace");
    }
    // Linux's own client, from the stack's namespace (outside the stack's reserved ports).
    let linux = pair
        .in_stack(|| {
            TcpStream::connect_timeout(
                &SocketAddr::from((PEER_ADDR6, PORT)),
                Duration::from_secs(10),
            )
        })
        .expect("entering the stack namespace");
    let e = linux.expect_err("Linux's connect must fail");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // The stack, over IPv6.
    let (snap, client) = run_stack_dual(
        &pair.stack_ns,
        &pair.stack_if,
        STACK_ADDR,
        &[STACK_ADDR6],
        TcpConfig::default(),
        Client::new(SocketAddrV6::new(PEER_ADDR6, PORT, 0, 0), b"x"),
    );
    assert_eq!(client.outcome(), Some(Err(AppError::ConnectionRefused)));
    let icmp = snap.endpoint.icmp;
    assert_eq!((icmp.fatal, icmp.errors_in), (1, 1), "{icmp:?}");
    assert_eq!(snap.iface.rx_icmp, 1);
    assert_eq!(snap.endpoint.flow.retrans_segs, 0, "no SYN retransmission");
    assert_eq!(snap.endpoint.conns_freed, 1);
}

/// A black hole (RFC 4821 §1): the same path, but the router's ICMP errors are dropped
/// (nftables in the router namespace), so no "fragmentation needed" ever arrives. With
/// `tcp_mtu_probing = 1` the stack detects it after `tcp_retries1` timeouts in a row and
/// drops to `tcp_base_mss` (1024 data bytes per segment), and 1 MiB arrives byte-exact.
#[test]
fn black_hole_is_detected_with_tcp_mtu_probing() {
    require_root();
    let path = RoutedPath::new(1280).expect("three namespaces with a router");
    small_link_at_peer(&path);
    for cmd in [
        &["nft", "add", "table", "ip", "xtest"][..],
        &[
            "nft",
            "add",
            "chain",
            "ip",
            "xtest",
            "out",
            "{ type filter hook output priority 0 ; }",
        ],
        &[
            "nft",
            "add",
            "rule",
            "ip",
            "xtest",
            "out",
            "icmp",
            "type",
            "destination-unreachable",
            "drop",
        ],
    ] {
        path.run_in_router(cmd)
            .expect("nftables in the router namespace");
    }
    const PORT: u16 = 5202;
    const TOTAL: usize = MIB;
    let sink = peer_sink(&path, PORT);
    let mut tcp = TcpConfig::default();
    tcp.set("tcp_mtu_probing", "1").expect("tcp_mtu_probing");
    let (snap, app) = run_stack(
        &path.stack_ns,
        &path.stack_if,
        ROUTED_STACK_ADDR,
        tcp,
        BulkSender::new(SocketAddrV4::new(ROUTED_PEER_ADDR, PORT), TOTAL),
    );
    let got = sink.join().expect("sink thread");
    assert_eq!(app.error, None);
    assert!(app.done, "the transfer did not end within {LIMIT:?}");
    assert_eq!(got.expect("peer read the stream"), TOTAL);
    let icmp = snap.endpoint.icmp;
    assert!(icmp.black_hole_mss_lowered >= 1, "{icmp:?}");
    assert_eq!(snap.iface.rx_icmp, 0, "the black hole sent no ICMP");
}
