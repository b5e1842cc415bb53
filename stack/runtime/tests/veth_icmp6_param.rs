//! ICMPv6 Parameter Problem (RFC 4443 §3.4) for a stack flow on a real veth pair (root only),
//! with an IPv6-only stack (no IPv4 address, `StackOptions::addr` = `None`): the stack
//! connects to [2001:2::2]:5005, whose SYNs the peer's nftables drops (so Linux neither
//! answers nor resets); the peer reads the stack's SYN off its interface (an AF_PACKET
//! socket sees it before nftables) and answers it with a Parameter Problem (code 1,
//! "unrecognized Next Header", pointer 6) from a raw ICMPv6 socket, quoting the SYN, the
//! kernel filling in the checksum. The XDP program steers it to the stack (steer6.h types
//! 1-4), and the connect fails at once with EPROTO, as Linux's `tcp_v6_err` fails a
//! SYN-SENT socket (`icmpv6_err_convert`: ICMPV6_PARAMPROB is EPROTO, fatal).
//!
//! Addresses 2001:2::1 / 2001:2::2 (RFC 5180) in the test's own namespaces, removed with
//! them, also on panic; every wait is bounded in time.

use std::net::SocketAddrV6;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use xdptcp::app::client::Client;
use xdptcp::app::AppError;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::Unreachable;
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, PEER_ADDR6, STACK_ADDR6};

const PORT: u16 = 5005;
const LIMIT: Duration = Duration::from_secs(10);

/// An owned file descriptor, closed on drop.
struct Fd(i32);
impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: close(2) on a descriptor this test opened and owns.
        unsafe { libc::close(self.0) };
    }
}

fn check(r: i32, what: &str) -> i32 {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

/// An AF_PACKET socket (IPv6, network-layer frames) with a 100 ms receive timeout.
fn ipv6_capture() -> Fd {
    // SAFETY: plain socket/setsockopt calls with valid arguments.
    unsafe {
        let fd = Fd(check(
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM,
                (libc::ETH_P_IPV6 as u16).to_be() as i32,
            ),
            "AF_PACKET socket",
        ));
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        check(
            libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            ),
            "SO_RCVTIMEO",
        );
        fd
    }
}

/// The first IPv6 packet on `fd` that is a TCP SYN from the stack to [`PORT`], within
/// [`LIMIT`].
fn stack_syn(fd: &Fd) -> Vec<u8> {
    let end = Instant::now() + LIMIT;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        // SAFETY: recv(2) into a buffer of the length given.
        let n = unsafe { libc::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else {
            continue; // the timeout: look again
        };
        let p = &buf[..n];
        if n >= 60
            && p[6] == 6
            && p[8..24] == STACK_ADDR6.octets()
            && u16::from_be_bytes([p[42], p[43]]) == PORT
            && p[53] & 0x12 == 0x02
        {
            return p.to_vec();
        }
    }
    panic!("no SYN from the stack within {LIMIT:?}");
}

/// Sends an ICMPv6 Parameter Problem (type 4, `code`, `pointer`) quoting `quote` to the
/// stack from a raw ICMPv6 socket (the kernel computes the checksum, RFC 4443 §2.3).
fn send_param_problem(code: u8, pointer: u32, quote: &[u8]) {
    let mut msg = vec![4, code, 0, 0];
    msg.extend_from_slice(&pointer.to_be_bytes());
    msg.extend_from_slice(quote);
    // SAFETY: a raw socket, sendto(2) with a valid sockaddr_in6 and buffer.
    unsafe {
        let fd = Fd(check(
            libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
            "raw ICMPv6 socket",
        ));
        let mut to: libc::sockaddr_in6 = std::mem::zeroed();
        to.sin6_family = libc::AF_INET6 as u16;
        to.sin6_addr.s6_addr = STACK_ADDR6.octets();
        let sent = libc::sendto(
            fd.0,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            &to as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in6>() as u32,
        );
        assert_eq!(
            sent,
            msg.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn ipv6_parameter_problem_fails_connect_with_eproto() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    pair.add_ipv6().expect("adding the IPv6 addresses");
    pair.run_in_peer(&[
        "nft",
        &format!(
            "add table ip6 xt_pp; \
             add chain ip6 xt_pp input {{ type filter hook input priority 0; }}; \
             add rule ip6 xt_pp input tcp dport {PORT} drop"
        ),
    ])
    .expect("nftables in the peer namespace");
    // The peer: capture the stack's SYN, answer it with a Parameter Problem.
    let (ready_tx, ready) = mpsc::channel();
    let peer_ns = pair.peer_ns.clone();
    let peer = std::thread::spawn(move || {
        let _ns = NetnsGuard::enter(&peer_ns).expect("peer namespace");
        let cap = ipv6_capture();
        ready_tx.send(()).unwrap();
        let syn = stack_syn(&cap);
        send_param_problem(1, 6, &syn);
        syn
    });
    ready.recv_timeout(LIMIT).expect("capture ready");
    // The stack, IPv6 only (`single` is the IPv4 shorthand; its address is taken away).
    let mut o = StackOptions::single(
        pair.stack_if.clone(),
        std::net::Ipv4Addr::UNSPECIFIED,
        Vec::new(),
        (61000, 61999),
    );
    o.addr = None;
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, ns) = (stop.clone(), pair.stack_ns.clone());
    let worker = std::thread::spawn(move || {
        let _ns = NetnsGuard::enter(&ns).expect("stack namespace");
        let mut stack =
            Stack::open_dual(&o, &[STACK_ADDR6]).unwrap_or_else(|e| panic!("stack start: {e}"));
        stack.workers[0].set_stop_flag(flag);
        let mut client = Client::new(SocketAddrV6::new(PEER_ADDR6, PORT, 0, 0), b"x");
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
    let syn = peer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    assert_eq!(syn[24..40], PEER_ADDR6.octets(), "the SYN's destination");
    assert_eq!(
        client.outcome(),
        Some(Err(AppError::Unreachable(Unreachable::ProtocolError)))
    );
    assert_eq!(
        AppError::Unreachable(Unreachable::ProtocolError).to_string(),
        "protocol error"
    );
    let (i, icmp) = (snap.iface, snap.endpoint.icmp);
    assert_eq!((i.rx_icmp, i.rx_icmp6_param_problem), (1, 1), "{i:?}");
    assert_eq!((icmp.errors_in, icmp.fatal), (1, 1), "{icmp:?}");
    assert_eq!(snap.endpoint.flow.retrans_segs, 0, "no SYN retransmission");
    assert_eq!(snap.endpoint.conns_freed, 1);
}
