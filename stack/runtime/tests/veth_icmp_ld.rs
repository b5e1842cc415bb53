//! RFC 6069 (TCP-LD) in the running stack, against a real Linux router (root only): stack --
//! router -- Linux peer (`harness::RoutedPath`). The stack sends to the peer, an RTT sample
//! exists, then the router loses its route to the peer: nftables in its forward path rejects
//! the stack's segments with ICMP host unreachable (IPv6: no route, code 0), as a router
//! with an `unreachable` route does (nftables rather than the route: the kernel's route-error
//! path, `ip_error`, has its own rate limit, `net.ipv4.route.error_cost` / `error_burst`,
//! which the test leaves alone; the router's ICMP rate limits are turned off in its
//! namespace). The stack keeps data queued (and closes only once the peer has it all: an
//! orphaned connection would give up after `tcp_orphan_retries`, 8, timeouts). With
//! Linux's `tcp_ld_RTO_revert` each unreachable quoting SND.UNA undoes the timeout's
//! doubling, so the stack retransmits about once per RTO instead of backing off
//! exponentially: the router counts the stack's data segments in a fixed window of the
//! outage and there must be at least twice as many as exponential backoff from
//! `tcp_rto_min` allows in that window. After the outage the route is back and the transfer
//! completes byte-exact.
//!
//! Counts, not timings: the bound is computed from the window the test measured.
//!
//! Run (as root): `cargo test --release -p xdptcp --test veth_icmp_ld -- --test-threads=1`.

#[path = "common/stack_run.rs"]
mod stack_run;

use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stack_run::{run_stack_dual, LIMIT};
#[path = "common/stream.rs"]
mod stream;
use stream::{peer_accept, read_checked, BulkSender};
use xdptcp::tcp::TcpConfig;
use xdptcp_harness::{
    require_root, RoutedPath, ROUTED_PEER_ADDR, ROUTED_PEER_ADDR6, ROUTED_STACK_ADDR,
    ROUTED_STACK_ADDR6,
};

const KIB: usize = 1 << 10;
/// Sent before the outage (RTT samples, a settled RTO).
const BEFORE: usize = 256 * KIB;
/// The whole stream; the rest is queued when the outage starts.
const TOTAL: usize = 1024 * KIB;
/// `tcp_rto_min` (the default): no RTO is shorter, so exponential backoff from it gives the
/// most timeouts any RTO could in a window.
const RTO_MIN: Duration = Duration::from_millis(200);
/// The outage's first part, not counted: the flight in progress is rejected then.
const SETTLE: Duration = Duration::from_secs(1);
/// The whole outage.
const OUTAGE: Duration = Duration::from_secs(6);

/// The Linux peer: accepts one connection on `addr:port`, reads [`BEFORE`] bytes, reports
/// on `have_before`, waits for `go` (the outage is on), sends one byte, reads the rest of
/// [`TOTAL`], sends another byte and reads to EOF; returns the byte count. Listening on
/// return.
fn peer_server(
    path: &RoutedPath,
    addr: IpAddr,
    port: u16,
    have_before: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> std::thread::JoinHandle<std::io::Result<usize>> {
    peer_accept(&path.peer_ns, addr, port, move |mut s| {
        let mut got = 0;
        read_checked(&mut s, &mut got, Some(BEFORE))?;
        let _ = have_before.send(());
        go.recv_timeout(Duration::from_secs(30))
            .map_err(|_| std::io::Error::other("no outage"))?;
        s.write_all(b"g")?;
        read_checked(&mut s, &mut got, Some(TOTAL))?;
        s.write_all(b"d")?;
        read_checked(&mut s, &mut got, None)?;
        Ok(got)
    })
}

/// One family's addresses and nftables words.
struct Family {
    nft: &'static str,
    stack: IpAddr,
    peer: IpAddr,
    /// The reject: ICMP host unreachable (code 1) / ICMPv6 no route (code 0).
    reject: &'static str,
    /// Matches data segments (not pure ACKs, which are at most 72 bytes of IP).
    data: &'static str,
}

fn router_nft(path: &RoutedPath, args: &[&str]) -> String {
    let mut cmd = vec!["nft"];
    cmd.extend_from_slice(args);
    let out = path
        .run_in_router(&cmd)
        .unwrap_or_else(|e| panic!("nft {args:?} in the router: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The router's count of the stack's data segments during the outage.
fn data_segments(path: &RoutedPath, f: &Family) -> u64 {
    let out = router_nft(path, &["list", "counter", f.nft, "xld", "resent"]);
    let words: Vec<&str> = out.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == "packets")
        .unwrap_or_else(|| panic!("no packet count in {out:?}"));
    words[i + 1].parse().expect("a packet count")
}

/// At most this many exponentially backed-off timeouts (RTO doubling from [`RTO_MIN`] or
/// more) fit in any window of length `w`: one at its start, then intervals of at least
/// RTO_MIN, 2 RTO_MIN, 4 RTO_MIN, ...
fn exponential_bound(w: Duration) -> u64 {
    let mut n = 1;
    let mut t = RTO_MIN;
    while t <= w {
        n += 1;
        t = t * 2 + RTO_MIN;
    }
    n
}

fn outage_reverts_backoff(v6: bool, port: u16) {
    require_root();
    let path = RoutedPath::new(1500).expect("three namespaces with a router");
    let f = if v6 {
        path.add_ipv6().expect("IPv6 on the path");
        Family {
            nft: "ip6",
            stack: ROUTED_STACK_ADDR6.into(),
            peer: ROUTED_PEER_ADDR6.into(),
            reject: "icmpv6 type no-route",
            data: "ip6 length > 40",
        }
    } else {
        Family {
            nft: "ip",
            stack: ROUTED_STACK_ADDR.into(),
            peer: ROUTED_PEER_ADDR.into(),
            reject: "icmp type host-unreachable",
            data: "ip length > 72",
        }
    };
    // One unreachable per rejected segment: the router's ICMP rate limits off (per namespace).
    #[rustfmt::skip]
    path.run_in_router(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0",
        "net.ipv6.icmp.ratelimit=0"]).expect("router ICMP rate limits");
    let (have_tx, have_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let server = peer_server(&path, f.peer, port, have_tx, go_rx);
    let mut tcp = TcpConfig::default();
    tcp.set("tcp_rto_min", &RTO_MIN.as_millis().to_string())
        .expect("tcp_rto_min");
    // The default tcp_retries2 (15): it limits time as Linux's `retransmits_timed_out` does
    // (~924 s), so one retransmission per RTO during the outage does not use it up.
    let (ns, ifname) = (path.stack_ns.clone(), path.stack_if.clone());
    let addrs6: Vec<Ipv6Addr> = if v6 { vec![ROUTED_STACK_ADDR6] } else { vec![] };
    let remote = SocketAddr::new(f.peer, port);
    let stack = std::thread::spawn(move || {
        run_stack_dual(
            &ns,
            &ifname,
            ROUTED_STACK_ADDR,
            &addrs6,
            tcp,
            BulkSender::phased(remote, BEFORE, TOTAL, 2),
        )
    });
    have_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the peer got the first part");
    // The outage: the router rejects the stack's segments to the peer (only those).
    let (fam, stack_ip, peer_ip) = (f.nft, f.stack.to_string(), f.peer.to_string());
    let rule = |extra: &str| {
        format!("{fam} saddr {stack_ip} {fam} daddr {peer_ip} tcp dport {port} {extra}")
    };
    let script = format!(
        "table {fam} xld {{\n counter resent {{}}\n chain outage {{\n  type filter hook forward priority 0;\n  {}\n  {}\n }}\n}}\n",
        rule(&format!("{} counter name resent", f.data)),
        rule(&format!("reject with {}", f.reject)),
    );
    let file = std::env::temp_dir().join(format!("xdptcp-ld-{}-{port}.nft", std::process::id()));
    std::fs::write(&file, script).expect("nft script");
    let file_s = file.to_string_lossy().into_owned();
    router_nft(&path, &["-f", &file_s]);
    let _ = std::fs::remove_file(&file);
    let start = Instant::now();
    go_tx.send(()).expect("peer waiting");
    std::thread::sleep(SETTLE);
    let t1 = Instant::now();
    let c1 = data_segments(&path, &f);
    std::thread::sleep(OUTAGE.saturating_sub(start.elapsed()));
    let c2 = data_segments(&path, &f);
    let window = t1.elapsed();
    router_nft(&path, &["delete", "table", fam, "xld"]);
    let got = server.join().expect("peer thread");
    let (snap, app) = stack
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    let icmp = snap.endpoint.icmp;
    let resent = c2 - c1;
    let bound = exponential_bound(window);
    assert_eq!(app.error, None, "{icmp:?}");
    assert!(app.done, "not done within {LIMIT:?}: {got:?}, {icmp:?}");
    assert_eq!(got.expect("peer read the stream"), TOTAL);
    assert!(
        resent >= 2 * bound,
        "{resent} data segments in {window:?} of outage; exponential backoff allows {bound}; {icmp:?}"
    );
    // Every one of them was rejected with an unreachable the stack took as a soft error.
    assert!(icmp.soft >= resent, "{resent} rejected, {icmp:?}");
    assert!(snap.iface.rx_icmp >= resent, "{:?}", snap.iface);
    assert!(
        snap.endpoint.flow.retrans_segs >= resent,
        "{:?}",
        snap.endpoint.flow
    );
    assert_eq!(icmp.fatal, 0, "{icmp:?}");
}

/// IPv4: ICMP host unreachable (type 3 code 1) from the router during a 6 s outage.
#[test]
fn host_unreachable_outage_keeps_retransmitting_every_rto() {
    outage_reverts_backoff(false, 5204);
}

/// IPv6: ICMPv6 destination unreachable, no route (type 1 code 0), from the router.
#[test]
fn ipv6_no_route_outage_keeps_retransmitting_every_rto() {
    outage_reverts_backoff(true, 5205);
}
