//! A Parameter Problem quoting the stack's SYN on a real veth pair (root only), for either
//! family: the stack connects to the peer's `port`, whose SYNs the peer's nftables drops (so
//! Linux neither answers nor resets); the peer reads the SYN off its interface and answers
//! it with a Parameter Problem from a raw socket (`xdptcp_harness::answer_syn_with_icmp`).
//! The XDP program steers it to the stack, and the connect fails at once with EPROTO, as
//! Linux's `tcp_v4_err` / `tcp_v6_err` fail a SYN-SENT socket (`icmp_err_convert` /
//! `icmpv6_err_convert`: EPROTO, fatal). Per-run namespaces removed with the pair, also on
//! panic; every wait is bounded in time.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xdptcp::app::client::Client;
use xdptcp::app::AppError;
use xdptcp::iface::IfaceStats;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::Unreachable;
use xdptcp_harness::{
    answer_syn_with_icmp, require_root, IcmpAnswer, NetnsGuard, VethOptions, VethPair, PEER_ADDR,
    PEER_ADDR6, STACK_ADDR, STACK_ADDR6,
};

const LIMIT: Duration = Duration::from_secs(10);

/// The family's side of the test.
pub struct Family {
    /// IPv6 (an IPv6-only stack, `StackOptions::addr` = `None`) or IPv4.
    pub v6: bool,
    /// The peer port the stack connects to.
    pub port: u16,
    /// The Parameter Problem the peer sends.
    pub answer: IcmpAnswer,
    /// The interface counter for that family's Parameter Problems.
    pub counter: fn(&IfaceStats) -> u64,
}

/// Runs the test for `f`.
pub fn parameter_problem_fails_connect(f: Family) {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let (table, stack_addr, peer_addr): (_, IpAddr, IpAddr) = if f.v6 {
        pair.add_ipv6().expect("adding the IPv6 addresses");
        ("ip6", STACK_ADDR6.into(), PEER_ADDR6.into())
    } else {
        ("ip", STACK_ADDR.into(), PEER_ADDR.into())
    };
    let port = f.port;
    pair.run_in_peer(&[
        "nft",
        &format!(
            "add table {table} xt_pp; \
             add chain {table} xt_pp input {{ type filter hook input priority 0; }}; \
             add rule {table} xt_pp input tcp dport {port} drop"
        ),
    ])
    .expect("nftables in the peer namespace");
    let peer = answer_syn_with_icmp(&pair.peer_ns, stack_addr, port, f.answer, LIMIT)
        .expect("the peer's capture");
    let mut o = StackOptions::single(
        pair.stack_if.clone(),
        STACK_ADDR,
        Vec::new(),
        (61000, 61999),
    );
    let addrs6 = if f.v6 {
        o.addr = None; // IPv6 only
        vec![STACK_ADDR6]
    } else {
        Vec::new()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, ns) = (stop.clone(), pair.stack_ns.clone());
    let worker = std::thread::spawn(move || {
        let _ns = NetnsGuard::enter(&ns).expect("stack namespace");
        let mut stack =
            Stack::open_dual(&o, &addrs6).unwrap_or_else(|e| panic!("stack start: {e}"));
        stack.workers[0].set_stop_flag(flag);
        let mut client = Client::new(SocketAddr::new(peer_addr, port), b"x");
        let snap = stack.workers[0].run(&mut client);
        (snap, client)
    });
    let end = Instant::now() + LIMIT;
    while !worker.is_finished() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let (snap, client) = worker
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    let syn = peer
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
        .expect("the peer's answer");
    let dst = if f.v6 { &syn[24..40] } else { &syn[16..20] };
    let want: Vec<u8> = match peer_addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    assert_eq!(dst, &want[..], "the SYN's destination");
    assert_eq!(
        client.outcome(),
        Some(Err(AppError::Unreachable(Unreachable::ProtocolError)))
    );
    assert_eq!(
        AppError::Unreachable(Unreachable::ProtocolError).to_string(),
        "protocol error"
    );
    let (i, icmp) = (snap.iface, snap.endpoint.icmp);
    assert_eq!((i.rx_icmp, (f.counter)(&i)), (1, 1), "{i:?}");
    assert_eq!((icmp.errors_in, icmp.fatal), (1, 1), "{icmp:?}");
    assert_eq!(snap.endpoint.flow.retrans_segs, 0, "no SYN retransmission");
    assert_eq!(snap.endpoint.conns_freed, 1);
}
