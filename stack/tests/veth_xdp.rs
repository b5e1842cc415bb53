//! Root-only: the steering program attached to a real veth pair between two namespaces.
//!
//! Run with `sudo -E cargo test -p xdptcp --test veth_xdp`. Without root every test fails
//! with one line saying so.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xdptcp::harness::{require_root, VethOptions, VethPair, STACK_ADDR};
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
    // Wait (bounded) for the child to say it attached.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("XDPTCP_CHILD_ATTACHED") {
                let _ = tx.send(());
                return;
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child did not attach within 30 s");
    }
    let attached = xdp_prog_on(&pair);
    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    let status = child.wait().unwrap();
    assert!(attached, "child's program should have been attached");
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
    let _ns = xdptcp::harness::NetnsGuard::enter(&ns).unwrap();
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
