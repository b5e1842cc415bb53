//! Root-only: the rtnetlink client and the neighbour cache against a real kernel, on two network
//! namespaces joined by a veth pair (198.18.0.0/15 only). Everything created here carries a
//! per-run suffix and is removed by `Netns`'s Drop, also when an assertion panics.
//!
//! A minimal private harness: `xdptcp::harness::VethPair` is being written on another branch.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant as StdInstant};

use xdptcp::neigh::{
    KernelResolver, Lookup, Mac, NeighCache, NeighConfig, NeighEvent, Netlink, NextHop, NudState,
    Queued, Resolver,
};
use xdptcp::time::Instant;

const STACK_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER_IP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
const ABSENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 99);

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair; deleted on drop (deleting a namespace deletes its veth).
struct Netns {
    stack_ns: String,
    peer_ns: String,
    stack_if: String,
    peer_if: String,
}

impl Netns {
    fn new() -> Netns {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let sfx = format!("{:x}{:04x}", std::process::id() & 0xffff, nanos & 0xffff);
        let n = Netns {
            stack_ns: format!("xnS{sfx}"),
            peer_ns: format!("xnP{sfx}"),
            stack_if: format!("xs{sfx}"),
            peer_if: format!("xp{sfx}"),
        };
        // Register for cleanup before creating anything, so a failing step still cleans up.
        ip(&["netns", "add", &n.stack_ns]);
        ip(&["netns", "add", &n.peer_ns]);
        ip(&[
            "link",
            "add",
            &n.stack_if,
            "netns",
            &n.stack_ns,
            "type",
            "veth",
            "peer",
            "name",
            &n.peer_if,
            "netns",
            &n.peer_ns,
        ]);
        for (ns, dev, addrs) in [
            (&n.stack_ns, &n.stack_if, &["198.18.0.1/24"][..]),
            (
                &n.peer_ns,
                &n.peer_if,
                &["198.18.0.2/24", "198.18.0.3/24"][..],
            ),
        ] {
            for a in addrs {
                ip(&["-n", ns, "addr", "add", a, "dev", dev]);
            }
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        // An off-link prefix (still in 198.18.0.0/15) via the peer, for route_get's gateway case.
        ip(&[
            "-n",
            &n.stack_ns,
            "route",
            "add",
            "198.19.5.0/24",
            "via",
            "198.18.0.2",
        ]);
        n
    }

    fn mac_of(ns: &str, dev: &str) -> Mac {
        let out = ip(&["-n", ns, "link", "show", "dev", dev]);
        let word = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no link/ether in: {out}"));
        let mut mac = [0u8; 6];
        for (i, h) in word.split(':').enumerate() {
            mac[i] = u8::from_str_radix(h, 16).expect("hex MAC");
        }
        mac
    }

    /// Runs `f` on a thread that has entered the stack namespace (setns is per thread).
    fn in_stack_ns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.stack_ns);
        let h = std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("open netns");
            // SAFETY: setns on a valid namespace fd; affects only this thread.
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        });
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.stack_ns, &self.peer_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
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
    let env = Netns::new();
    let stack_mac = Netns::mac_of(&env.stack_ns, &env.stack_if);
    let peer_mac = Netns::mac_of(&env.peer_ns, &env.peer_if);
    let stack_if = env.stack_if.clone();

    env.in_stack_ns(move || {
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
        assert_eq!(kr.lookup(PEER_IP2), None);
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
                (PEER_IP2, peer_mac, 0),
                (PEER_IP2, peer_mac, 1),
                (PEER_IP2, peer_mac, 2)
            ]
        );
        assert_eq!(cache.lookup(now(), PEER_IP2), Lookup::Found(peer_mac));
        assert_eq!(kr.errors(), 0);
    });
}
