//! An IPv6-only stack against the Linux kernel on a real veth pair (root only):
//! `xdptcp serve --addr 2001:2::1` (no IPv4 address) answers Linux over IPv6 (handshake,
//! echo, close, `xdptcp stat`), while every IPv4 segment stays the kernel's: a kernel
//! listener on the stack's IPv4 address, on the served port and on a port of the stack's
//! ephemeral range, accepts Linux's IPv4 connections (the XDP program steers no IPv4 at all
//! for an IPv6-only stack). `xdptcp connect --addr 2001:2::1` reaches a Linux server over
//! IPv6; an IPv4 `--remote` with it is one clear line.
//!
//! Addresses: 2001:2::1 (stack) and 2001:2::2 (Linux) from the RFC 5180 benchmarking prefix
//! (`VethPair::add_ipv6`, `nodad`), 198.18.0.1 / 198.18.0.2 for the kernel's IPv4; all in the
//! test's own namespaces, removed with them, also on panic. Every loop and socket call is
//! bounded in count and time.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xdptcp_harness::{require_root, VethOptions, VethPair, PEER_ADDR6, STACK_ADDR, STACK_ADDR6};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn pair6() -> VethPair {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    pair.add_ipv6().expect("adding the IPv6 addresses");
    pair
}

/// From the peer: connect to `addr`, send `msg`, half-close, read to the end (the echo).
fn echo_from_peer(pair: &VethPair, addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    pair.in_peer(|| -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.write_all(msg)?;
        s.shutdown(Shutdown::Write)?;
        let mut v = Vec::new();
        s.read_to_end(&mut v)?;
        Ok(v)
    })
    .expect("entering the peer namespace")
    .unwrap_or_else(|e| panic!("echo via {addr}: {e}"))
}

#[test]
fn ipv6_only_serve_binary() {
    let pair = pair6();
    // Kernel listeners on the stack's IPv4 address: the served port, and a port inside the
    // stack's ephemeral range (61000-61999; reserved ports can still be bound explicitly).
    let kernel = pair
        .in_stack(|| {
            [7u16, 61500].map(|p| {
                let l = TcpListener::bind((STACK_ADDR, p)).expect("kernel bind");
                l.set_nonblocking(true).expect("nonblocking");
                l
            })
        })
        .expect("entering the stack namespace");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "2001:2::1"])
        .args(["--listen", "7=echo", "--duration", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp serve");
    let out = child.stdout.take().expect("stdout");
    let mut child = xdptcp_harness::KillOnDrop(child);
    let lines = xdptcp_harness::lines_of(out);
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("start-up line");
    assert!(
        first.starts_with(&format!(
            "xdptcp: serving on {} 2001:2::1 ports 7=echo;",
            pair.stack_if
        )),
        "{first}"
    );

    // IPv6: handshake, echo, close, twice (the second reuses nothing of the first).
    for i in 0..2 {
        let msg = format!("ipv6-only #{i}");
        let back = echo_from_peer(&pair, SocketAddr::from((STACK_ADDR6, 7)), msg.as_bytes());
        assert_eq!(back, msg.as_bytes());
    }

    // IPv4 is the kernel's: its listeners accept on the same port and in the stack's range.
    for (l, p) in kernel.iter().zip([7u16, 61500]) {
        let peer = pair
            .in_peer(|| TcpStream::connect_timeout(&SocketAddr::from((STACK_ADDR, p)), IO_TIMEOUT))
            .expect("entering the peer namespace")
            .unwrap_or_else(|e| panic!("IPv4 to the kernel's port {p}: {e}"));
        let end = Instant::now() + IO_TIMEOUT;
        let accepted = loop {
            match l.accept() {
                Ok((s, from)) => break Some((s, from)),
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        let (_, from) = accepted.unwrap_or_else(|| panic!("the kernel did not accept on {p}"));
        assert_eq!(from, peer.local_addr().unwrap());
    }

    // `xdptcp stat` names the stack by its IPv6 address and lists the IPv6 listener only.
    let stat = Command::new("timeout")
        .args(["10", "ip", "netns", "exec", &pair.stack_ns, BIN, "stat"])
        .args(["--iface", &pair.stack_if])
        .output()
        .expect("xdptcp stat");
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.status.success(), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap_or("")
            .ends_with(&format!("on {} 2001:2::1: 1 workers", pair.stack_if)),
        "{text}"
    );
    let listeners: Vec<&str> = text.lines().filter(|l| l.contains(" listener ")).collect();
    assert_eq!(listeners.len(), 1, "{text}");
    assert!(listeners[0].contains("listener 2001:2::1:7 "), "{text}");

    // SIGTERM by PID: a clean stop.
    let status =
        xdptcp_harness::terminate(&mut child.0, Duration::from_secs(10)).expect("serve stopped");
    assert!(status.success(), "{status:?}");
}

/// `xdptcp connect --addr 2001:2::1 --remote [2001:2::2]:PORT` against a Linux echo server;
/// an IPv4 `--remote` without an IPv4 `--addr` is one clear line (exit status 2).
#[test]
fn ipv6_only_connect_binary() {
    let pair = pair6();
    let (port, server) = pair
        .peer_echo_once(PEER_ADDR6.into())
        .expect("peer echo server");
    let remote = format!("[{PEER_ADDR6}]:{port}");
    let connect = |addr: &str, remote: &str| {
        Command::new("timeout")
            .args(["20", "ip", "netns", "exec", &pair.stack_ns, BIN, "connect"])
            .args(["--iface", &pair.stack_if, "--addr", addr])
            .args(["--remote", remote, "--message", "v6 only"])
            .output()
            .expect("xdptcp connect")
    };
    let out = connect("2001:2::1", &remote);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("received 7 bytes from {remote}: \"v6 only\"")),
        "{text}"
    );
    server.join().expect("server thread");
    let out = connect("2001:2::1", "198.18.0.2:7");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "xdptcp: bad --remote: an IPv4 server needs an IPv4 --addr"
    );
}

/// The binary's lines for `--addr` mixes it refuses (exit status 2, before touching the
/// interface): a second IPv4 address, an address given twice.
#[test]
fn bad_addr_mixes_are_one_line() {
    let run = |addrs: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["serve", "--iface", "xt-none0", "--listen", "7=echo"]);
        for a in addrs {
            c.args(["--addr", a]);
        }
        let out = c.output().expect("xdptcp serve");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    assert_eq!(
        run(&["2001:2::1", "198.18.0.1", "198.18.0.3"]),
        (
            Some(2),
            "xdptcp: bad --addr 198.18.0.3: at most one IPv4 address (have 198.18.0.1 already)"
                .to_string()
        )
    );
    assert_eq!(
        run(&["2001:2::1", "2001:2::1"]),
        (
            Some(2),
            "xdptcp: bad --addr 2001:2::1: given twice".to_string()
        )
    );
}
