//! Root-only: the rtnetlink client and the neighbour cache against a real kernel, on two network
//! namespaces joined by a veth pair (198.18.0.0/15 only). Everything created here carries a
//! per-run suffix and is removed by `VethPair`'s Drop, also when an assertion panics.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant as StdInstant};

use xdptcp::neigh::{
    KernelResolver, Lookup, NeighCache, NeighConfig, NeighEvent, Netlink, NextHop, NudState,
    Queued, Resolver,
};
use xdptcp::time::Instant;
use xdptcp_harness::{VethOptions, VethPair};

const STACK_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER_IP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
const ABSENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 99);

/// The harness's veth pair plus what this test needs on top: a second peer address and an
/// off-link prefix (still in 198.18.0.0/15) routed via the peer, for route_get's gateway case.
fn veth() -> VethPair {
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    assert_eq!((pair.stack_addr(), pair.peer_addr()), (STACK_IP, PEER_IP));
    pair.run_in_peer(&["ip", "addr", "add", "198.18.0.3/24", "dev", &pair.peer_if])
        .expect("second peer address");
    pair.run_in_stack(&["ip", "route", "add", "198.19.5.0/24", "via", "198.18.0.2"])
        .expect("off-link route");
    pair
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("veth_neigh needs root (it creates network namespaces); run as root");
    }
}

/// Polls `f` every 10 ms for at most `limit`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = StdInstant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kernel_neighbour_resolution_over_netlink() {
    require_root();
    let env = veth();
    let (stack_mac, peer_mac) = (env.stack_mac, env.peer_mac);
    let stack_if = env.stack_if.clone();

    env.in_stack(move || {
        let mut nl = Netlink::open().expect("netlink socket");

        let link = nl.link_info(&stack_if).expect("link_info");
        assert_eq!(link.mac, stack_mac);
        assert_eq!(link.mtu, 1500);
        let missing = nl.link_info("xdptcp-none").unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            nl.link_addrs(link.ifindex).expect("link_addrs"),
            vec![STACK_IP]
        );

        // On-link peer: the next hop is the destination itself.
        let nh = nl.route_get(PEER_IP).expect("route_get on-link");
        assert_eq!(
            nh,
            NextHop {
                ip: PEER_IP,
                via_gateway: false,
                oif: link.ifindex,
                prefsrc: Some(STACK_IP)
            }
        );
        // Off-link destination: the next hop is the gateway.
        let nh = nl
            .route_get(Ipv4Addr::new(198, 19, 5, 7))
            .expect("route_get via gateway");
        assert_eq!(
            (nh.ip, nh.via_gateway, nh.oif),
            (PEER_IP, true, link.ifindex)
        );
        // Our own address is local, not a next hop.
        assert!(nl.route_get(STACK_IP).is_err());

        // Unknown at first, and nothing else sends to the peer: without a request the entry
        // does not appear. Then one non-blocking request makes the kernel ARP for it.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            nl.neigh_get(link.ifindex, PEER_IP).expect("neigh_get"),
            None
        );
        let t0 = StdInstant::now();
        nl.neigh_resolve(link.ifindex, PEER_IP)
            .expect("neigh_resolve");
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "neigh_resolve blocked"
        );
        let got = wait_for(Duration::from_secs(3), || {
            match nl.neigh_get(link.ifindex, PEER_IP).expect("neigh_get") {
                Some((mac, st)) if st.usable() => Some((mac, st)),
                _ => None,
            }
        })
        .expect("kernel did not resolve the peer within 3 s");
        assert_eq!(got, (peer_mac, NudState::Reachable));

        // An address nobody owns never becomes usable.
        nl.neigh_resolve(link.ifindex, ABSENT_IP)
            .expect("neigh_resolve absent");
        std::thread::sleep(Duration::from_millis(300));
        let absent = nl
            .neigh_get(link.ifindex, ABSENT_IP)
            .expect("neigh_get absent");
        assert!(
            absent.is_none_or(|(_, st)| !st.usable()),
            "absent: {absent:?}"
        );

        // The cache over the kernel back-end: frames to an unresolved on-link neighbour are held
        // and released in order once the kernel has resolved it.
        let mut kr = KernelResolver::new(nl, link.ifindex);
        assert_eq!(kr.lookup(PEER_IP2.into()), None);
        let mut cache: NeighCache<u32> = NeighCache::new(NeighConfig::default());
        let epoch = StdInstant::now();
        let now = || Instant::from_nanos(epoch.elapsed().as_nanos() as u64);
        for f in 0..3 {
            assert_eq!(cache.send_or_queue(now(), PEER_IP2, f), Queued::Held);
        }
        let mut sent = Vec::new();
        let done = wait_for(Duration::from_secs(3), || {
            cache.poll(now(), &mut kr);
            while let Some(ev) = cache.pop_event() {
                match ev {
                    NeighEvent::Transmit { ip, mac, frame } => sent.push((ip, mac, frame)),
                    NeighEvent::Failed { ip, frame } => panic!("resolution failed: {ip} {frame}"),
                }
            }
            (sent.len() == 3).then_some(())
        });
        assert!(
            done.is_some(),
            "cache did not resolve {PEER_IP2} within 3 s: {sent:?}"
        );
        // Both peer addresses live on the same veth, so they share its MAC.
        assert_eq!(
            sent,
            vec![
                (PEER_IP2.into(), peer_mac, 0),
                (PEER_IP2.into(), peer_mac, 1),
                (PEER_IP2.into(), peer_mac, 2)
            ]
        );
        assert_eq!(cache.lookup(now(), PEER_IP2), Lookup::Found(peer_mac));
        assert_eq!(kr.errors(), 0);
    })
    .expect("enter the stack namespace");
}

/// The kernel's routes copied to user space match `ip route get`, and a route
/// added later reaches the table through the RTNLGRP_IPV4_ROUTE notification.
#[test]
fn route_table_dump_and_refresh_on_notification() {
    use xdptcp::neigh::route::{RouteMonitor, RouteView};
    require_root();
    let env = veth();
    env.in_stack(move || {
        let mut nl = Netlink::open().expect("netlink socket");
        let mut mon = RouteMonitor::open(42).expect("route dump");
        let mut view = RouteView::new(mon.shared());
        for dst in [PEER_IP, PEER_IP2, ABSENT_IP, Ipv4Addr::new(198, 19, 5, 7)] {
            let kernel = nl.route_get(dst).expect("route_get").ip;
            assert_eq!(view.next_hop(dst), Some(kernel), "next hop toward {dst}");
        }
        // No default route in a fresh namespace: off-link elsewhere has no route.
        let far = Ipv4Addr::new(198, 19, 9, 1);
        assert_eq!(view.next_hop(far), None);
        assert!(!mon.poll(false), "no notification yet");
        let g = view.generation();
        let out = std::process::Command::new("ip")
            .args(["route", "add", "198.19.9.0/24", "via", "198.18.0.3"])
            .output()
            .expect("ip route add");
        assert!(out.status.success(), "{out:?}");
        let published = wait_for(Duration::from_secs(2), || mon.poll(false).then_some(()));
        assert!(published.is_some(), "route notification never seen");
        assert_eq!(view.next_hop(far), Some(PEER_IP2));
        assert!(view.generation() > g);
        // A blackhole route shadows the /24.
        let out = std::process::Command::new("ip")
            .args(["route", "add", "blackhole", "198.19.9.128/25"])
            .output()
            .expect("ip route add blackhole");
        assert!(out.status.success(), "{out:?}");
        wait_for(Duration::from_secs(2), || mon.poll(false).then_some(()))
            .expect("second notification");
        assert_eq!(view.next_hop(Ipv4Addr::new(198, 19, 9, 200)), None);
        assert_eq!(view.next_hop(far), Some(PEER_IP2));
        // Counted for `xdptcp stat`: the start table and two published after notifications.
        let st = mon.stats();
        let c: std::collections::HashMap<_, _> = st.counters().into_iter().collect();
        assert!(c["route_tables"] >= 3, "{c:?}");
        assert!(c["route_events"] >= 2, "{c:?}");
        assert!(c["routes"] >= 2, "the two added at least: {c:?}");
        assert_eq!(
            (c["route_dump_errors"], c["route_recv_errors"]),
            (0, 0),
            "{c:?}"
        );
    })
    .expect("in stack namespace");
}
