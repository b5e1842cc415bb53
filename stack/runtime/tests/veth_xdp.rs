//! Root-only: the steering program attached to a real veth pair between two namespaces.
//!
//! Run with `sudo -E cargo test -p xdptcp --test veth_xdp`. Without root every test fails
//! with one line saying so.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xdptcp_harness::{require_root, VethOptions, VethPair, STACK_ADDR};
use xdptcp_xdp::{AttachOptions, Error, Steering};

const CHILD_ENV: &str = "XDPTCP_TEST_CHILD";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn veth() -> VethPair {
    require_root();
    VethPair::new(VethOptions::default()).expect("create veth pair")
}

fn attach(pair: &VethPair) -> Steering {
    Steering::attach(&pair.stack_if, AttachOptions::default()).expect("attach steering program")
}

/// Polls `cond` every 20 ms for at most `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect_from_peer(pair: &VethPair, port: u16) -> std::io::Result<TcpStream> {
    let to = SocketAddr::from((STACK_ADDR, port));
    pair.in_peer(|| TcpStream::connect_timeout(&to, CONNECT_TIMEOUT))
        .expect("enter peer namespace")
}

fn xdp_prog_on(pair: &VethPair) -> bool {
    let out = pair
        .run_in_stack(&["ip", "link", "show", "dev", &pair.stack_if])
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

#[test]
fn ping_still_works_and_is_passed() {
    let pair = veth();
    let _ns = pair.enter_stack_ns().unwrap();
    let s = attach(&pair);
    assert!(xdp_prog_on(&pair));
    let before = s.counters().unwrap();
    let out = pair
        .run_in_peer(&["ping", "-c", "3", "-W", "1", "-i", "0.2", "198.18.0.1"])
        .expect("ping from the peer through the XDP program");
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 received"));
    let d = s.counters().unwrap().since(&before);
    // Three echo requests (plus any ARP) reached the kernel through XDP_PASS.
    assert!(d.passed >= 3, "{d:?}");
    assert_eq!((d.redirected, d.malformed, d.no_socket), (0, 0, 0), "{d:?}");
}

#[test]
fn steered_port_without_socket_is_counted_and_other_ports_reach_the_kernel() {
    let pair = veth();
    let _ns = pair.enter_stack_ns().unwrap();
    let mut s = attach(&pair);
    s.add_listen(STACK_ADDR, 7777).unwrap();
    s.set_ephemeral(STACK_ADDR, 40000, 40099).unwrap();
    // A kernel listener on a port the stack does not own (this thread is in the stack ns).
    let kernel = TcpListener::bind((STACK_ADDR, 7778)).unwrap();

    // Steered with no XSK on the queue: passed to the kernel and counted as no_socket; the
    // kernel has no socket there either, so it answers RST (RFC 9293 section 3.10.7.1).
    for port in [7777, 40000, 40099] {
        let before = s.counters().unwrap();
        let e = connect_from_peer(&pair, port).expect_err("no listener anywhere");
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "port {port}: {e}");
        let d = s.counters().unwrap().since(&before);
        assert!(d.no_socket >= 1, "port {port}: {d:?}");
        assert_eq!(d.redirected, 0, "port {port}: {d:?}");
    }

    // Not steered: a whole kernel connection with data, and none of it counted as no_socket.
    let before = s.counters().unwrap();
    let mut c = connect_from_peer(&pair, 7778).expect("kernel listener reachable");
    let (mut server, _) = kernel.accept().unwrap();
    server.set_read_timeout(Some(CONNECT_TIMEOUT)).unwrap();
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    drop(c);
    let d = s.counters().unwrap().since(&before);
    assert!(d.passed >= 3, "SYN, ACK and data at least: {d:?}");
    assert_eq!(d.no_socket, 0, "{d:?}");

    // Port just outside the ephemeral range: not steered.
    let before = s.counters().unwrap();
    let _ = connect_from_peer(&pair, 40100).expect_err("nothing listens");
    let d = s.counters().unwrap().since(&before);
    assert_eq!(d.no_socket, 0, "{d:?}");
    assert!(d.passed >= 1, "{d:?}");
}

fn connect_to(pair: &VethPair, addr: std::net::Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let to = SocketAddr::from((addr, port));
    pair.in_peer(|| TcpStream::connect_timeout(&to, CONNECT_TIMEOUT))
        .expect("enter peer namespace")
}

/// The ephemeral range set for one address steers only that address; set for 0.0.0.0 it
/// steers every address of the interface (a stack with several addresses, as the
/// bench's `conns` client uses).
#[test]
fn ephemeral_range_for_one_or_every_address() {
    let pair = veth();
    let _ns = pair.enter_stack_ns().unwrap();
    let second = std::net::Ipv4Addr::new(198, 18, 0, 3);
    pair.run_in_stack(&["ip", "addr", "add", "198.18.0.3/24", "dev", &pair.stack_if])
        .expect("second address");
    let mut s = attach(&pair);
    s.set_ephemeral(STACK_ADDR, 40000, 40099).unwrap();
    // Steered with no XSK: counted as no_socket, then refused by the kernel.
    let steered = |s: &Steering, addr| {
        let before = s.counters().unwrap();
        let e = connect_to(&pair, addr, 40000).expect_err("nothing listens");
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{addr}: {e}");
        s.counters().unwrap().since(&before).no_socket >= 1
    };
    assert!(steered(&s, STACK_ADDR));
    assert!(!steered(&s, second), "another address is not the stack's");
    s.set_ephemeral(std::net::Ipv4Addr::UNSPECIFIED, 40000, 40099)
        .unwrap();
    assert!(steered(&s, STACK_ADDR));
    assert!(steered(&s, second), "0.0.0.0: every address");
}

#[test]
fn second_attach_is_refused_with_a_clear_error() {
    let pair = veth();
    let _ns = pair.enter_stack_ns().unwrap();
    let _s = attach(&pair);
    let e = Steering::attach(&pair.stack_if, AttachOptions::default()).unwrap_err();
    assert!(matches!(e, Error::AlreadyAttached { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&pair.stack_if) && msg.contains("another xdptcp"),
        "{msg}"
    );
}

#[test]
fn frags_program_attaches_with_jumbo_mtu() {
    require_root();
    let pair = VethPair::new(VethOptions {
        queues: 2,
        mtu: Some(9000),
    })
    .expect("create jumbo veth pair");
    let _ns = pair.enter_stack_ns().unwrap();
    let s = Steering::attach(&pair.stack_if, AttachOptions { frags: true })
        .expect("attach xdp.frags program at MTU 9000");
    assert!(s.frags());
    let before = s.counters().unwrap();
    pair.run_in_peer(&["ping", "-c", "1", "-W", "1", "-s", "8000", "198.18.0.1"])
        .expect("jumbo ping through the frags program");
    assert!(s.counters().unwrap().since(&before).passed >= 1);
}

#[test]
fn single_buffer_program_at_jumbo_mtu_asks_for_frags() {
    require_root();
    let pair = VethPair::new(VethOptions {
        queues: 1,
        mtu: Some(9000),
    })
    .expect("create jumbo veth pair");
    let _ns = pair.enter_stack_ns().unwrap();
    let e = Steering::attach(&pair.stack_if, AttachOptions { frags: false }).unwrap_err();
    assert!(matches!(e, Error::NeedsFrags { mtu: 9000, .. }), "{e}");
    assert!(!xdp_prog_on(&pair));
}

#[test]
fn program_goes_away_when_the_attaching_process_is_killed() {
    let pair = veth();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "child_attach_and_sleep",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "attach")
        .env("XDPTCP_TEST_NS", &pair.stack_ns)
        .env("XDPTCP_TEST_IF", &pair.stack_if)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Whatever happens below, the child does not outlive this test.
    let stdout = child.stdout.take().unwrap();
    let mut child = xdptcp_harness::KillOnDrop(child);
    // Wait (bounded) for the child to say it attached.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("XDPTCP_CHILD_ATTACHED") {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("child did not attach within 30 s");
    assert!(xdp_prog_on(&pair), "child's program should be attached");

    child.0.kill().unwrap(); // SIGKILL: no destructor runs in the child
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    assert!(
        wait_until(Duration::from_secs(5), || !xdp_prog_on(&pair)),
        "XDP program still attached after SIGKILL"
    );
}

/// Not a test on its own: the body of the child process of the SIGKILL test above.
#[test]
fn child_attach_and_sleep() {
    if std::env::var(CHILD_ENV).as_deref() != Ok("attach") {
        return;
    }
    let ns = std::env::var("XDPTCP_TEST_NS").unwrap();
    let ifname = std::env::var("XDPTCP_TEST_IF").unwrap();
    let _ns = xdptcp_harness::NetnsGuard::enter(&ns).unwrap();
    let _s = Steering::attach(&ifname, AttachOptions::default()).unwrap();
    println!("XDPTCP_CHILD_ATTACHED");
    std::io::stdout().flush().unwrap();
    // The parent kills us; never outlive it by more than this.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn veth_pair_is_removed_on_panic() {
    require_root();
    let names = std::panic::catch_unwind(|| {
        let pair = VethPair::new(VethOptions::default()).unwrap();
        let names = (pair.stack_ns.clone(), pair.peer_ns.clone());
        std::panic::panic_any(names);
    })
    .unwrap_err();
    let (stack_ns, peer_ns) = names.downcast_ref::<(String, String)>().unwrap();
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(!list.contains(stack_ns.as_str()), "{list}");
    assert!(!list.contains(peer_ns.as_str()), "{list}");
}

#[test]
fn veth_pair_is_configured() {
    let pair = veth();
    assert_ne!(pair.stack_mac, [0; 6]);
    assert_ne!(pair.stack_mac, pair.peer_mac);
    let out = pair.run_in_peer(&["ethtool", "-k", &pair.peer_if]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("tx-checksumming: off"));
    // A kernel client in the peer reaches a kernel server in the stack namespace.
    let listener = pair
        .in_stack(|| TcpListener::bind((STACK_ADDR, 7000)))
        .unwrap()
        .unwrap();
    let _c = connect_from_peer(&pair, 7000).expect("connect without XDP");
    listener.set_nonblocking(true).unwrap();
    assert!(wait_until(Duration::from_secs(2), || listener
        .accept()
        .is_ok()));
}

/// RFC 1071 ones'-complement sum over the pseudo-header (RFC 9293 section 3.1) and segment.
fn tcp_checksum_ok(ip: &[u8], tcp: &[u8]) -> bool {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&ip[12..20]);
    add(&[0, 6]);
    add(&(tcp.len() as u16).to_be_bytes());
    add(tcp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// A bare xsk-rs socket on queue 0 (the AF_XDP device proper lives in `phy`): a peer's SYN
/// to a steered port lands in its RX ring with a valid checksum; unregistered, it goes back to
/// the kernel as no_socket.
#[test]
fn steered_syn_is_redirected_to_a_registered_xsk() {
    use std::os::fd::AsRawFd;
    use xsk_rs::config::{LibxdpFlags, SocketConfig, UmemConfig};
    use xsk_rs::{Socket, Umem};

    let pair = veth();
    let _ns = pair.enter_stack_ns().unwrap();
    let mut s = attach(&pair);
    s.add_listen(STACK_ADDR, 7777).unwrap();

    let (umem, mut descs) =
        Umem::new(UmemConfig::default(), 64.try_into().unwrap(), false).expect("create UMEM");
    let cfg = SocketConfig::builder()
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .build();
    let ifname = pair.stack_if.parse().unwrap();
    // SAFETY: one socket on this UMEM and queue; the program is ours (INHIBIT_PROG_LOAD).
    let (_tx, mut rx, fq_cq) = unsafe { Socket::new(cfg, &umem, &ifname, 0) }.expect("bind XSK");
    let (mut fq, _cq) = fq_cq.expect("first socket owns the fill and completion rings");
    // SAFETY: the frames are fresh and owned by nobody else.
    assert_eq!(unsafe { fq.produce(&descs[..32]) }, 32);
    s.register_xsk(0, rx.fd().as_raw_fd()).unwrap();

    let before = s.counters().unwrap();
    let to = SocketAddr::from((STACK_ADDR, 7777));
    let mut got = None;
    std::thread::scope(|scope| {
        // The SYN goes to our ring and nobody answers: this connect times out after 1 s.
        let client = scope.spawn(|| {
            pair.in_peer(|| TcpStream::connect_timeout(&to, Duration::from_secs(1)))
                .unwrap()
        });
        let mut rx_descs = descs.split_off(32);
        wait_until(Duration::from_secs(3), || {
            // SAFETY: descriptors come back from the RX ring of this UMEM.
            let n = unsafe { rx.consume(&mut rx_descs[..1]) };
            if n == 1 {
                // SAFETY: the frame was just received and is not in any ring.
                let data = unsafe { umem.data(&rx_descs[0]) };
                got = Some(data.contents().to_vec());
            }
            got.is_some()
        });
        assert!(client.join().unwrap().is_err(), "no SYN-ACK can come back");
    });
    let frame = got.expect("SYN in the XSK RX ring within 3 s");
    assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let ip = &frame[14..];
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let tcp = &ip[ihl..tot];
    assert_eq!(ip[9], 6, "TCP");
    assert_eq!(u16::from_be_bytes([tcp[2], tcp[3]]), 7777);
    assert_eq!(tcp[13] & 0x12, 0x02, "SYN without ACK");
    assert!(
        tcp_checksum_ok(ip, tcp),
        "full checksum (tx offload off on the peer)"
    );
    let d = s.counters().unwrap().since(&before);
    assert!(d.redirected >= 1, "{d:?}");
    assert_eq!(d.no_socket, 0, "{d:?}");

    // Unregistered: the kernel sees the SYN again and refuses it.
    s.unregister_xsk(0).unwrap();
    let before = s.counters().unwrap();
    let e = connect_from_peer(&pair, 7777).expect_err("kernel has no listener");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let d = s.counters().unwrap().since(&before);
    assert!(d.no_socket >= 1 && d.redirected == 0, "{d:?}");
}
