//! Root-only: the wire fault injector (`xdptcp_xdp::loss`, a tcx egress program) on the peer's
//! veth, with kernel TCP on both ends. Checks that it really drops on the wire at the
//! configured rate, that kernel TCP still delivers byte-exact in both directions, that
//! 100 % loss stops a handshake, that every-Nth is count-exact, and that dropping the injector
//! detaches it. Namespaces (198.18.0.0/24 only) are removed by `VethPair`'s Drop, also on
//! panic; every wait is bounded.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use xdptcp_harness::{require_root, VethOptions, VethPair, STACK_ADDR};
use xdptcp_xdp::loss::{LossConfig, LossCounters, LossInjector};

const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A pair with per-segment loss semantics: kernel TCP builds GSO skbs of up to 64 KB even
/// with GSO off on the device (they are split after tc egress), so cap the peer's
/// `gso_max_segs` at 1: each skb the injector sees is then one segment on the wire.
fn pair() -> VethPair {
    require_root();
    let p = VethPair::new(VethOptions::default()).expect("create veth pair");
    p.run_in_peer(&["ip", "link", "set", "dev", &p.peer_if, "gso_max_segs", "1"])
        .expect("gso_max_segs 1 on the peer");
    p
}

fn attach(p: &VethPair, cfg: LossConfig) -> LossInjector {
    let ifname = p.peer_if.clone();
    p.in_peer(move || LossInjector::attach_egress(&ifname, cfg))
        .expect("enter peer ns")
        .expect("attach the loss injector")
}

fn listen(p: &VethPair) -> (TcpListener, SocketAddr) {
    let l = p
        .in_stack(|| TcpListener::bind((STACK_ADDR, 0)))
        .expect("enter stack ns")
        .expect("bind listener");
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn connect(p: &VethPair, to: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    p.in_peer(move || TcpStream::connect_timeout(&to, timeout))
        .expect("enter peer ns")
}

/// Deterministic test bytes (xorshift64*), different per seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// Writes `data` then half-closes, while reading the other direction to EOF (at most
/// `expect + 1` bytes). Returns what was read.
fn exchange(mut s: TcpStream, data: &[u8], expect: usize) -> Vec<u8> {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut r = s.try_clone().unwrap();
    std::thread::scope(|sc| {
        let reader = sc.spawn(move || {
            let mut got = Vec::with_capacity(expect);
            (&mut r)
                .take(expect as u64 + 1)
                .read_to_end(&mut got)
                .expect("read to EOF");
            got
        });
        s.write_all(data).expect("write all");
        s.shutdown(Shutdown::Write).expect("half-close");
        reader.join().unwrap()
    })
}

/// Both directions at once: the peer sends `up` to the stack side, the stack side sends `down`.
fn transfer(p: &VethPair, up: &[u8], down: &[u8]) {
    let (l, addr) = listen(p);
    transfer_via(p, &l, addr, up, down);
}

/// [`transfer`] through an existing listener `l` on `addr`.
fn transfer_via(p: &VethPair, l: &TcpListener, addr: SocketAddr, up: &[u8], down: &[u8]) {
    let client = connect(p, addr, Duration::from_secs(20)).expect("connect under loss");
    // The handshake is complete, so accept does not block.
    let (server, _) = l.accept().expect("accept");
    let (got_up, got_down) = std::thread::scope(|sc| {
        let srv = sc.spawn(|| exchange(server, down, up.len()));
        let got_down = exchange(client, up, down.len());
        (srv.join().unwrap(), got_down)
    });
    assert!(
        got_up == up,
        "peer->stack stream differs ({} bytes)",
        got_up.len()
    );
    assert!(
        got_down == down,
        "stack->peer stream differs ({} bytes)",
        got_down.len()
    );
}

/// Counters once they stop moving (a late retransmission or ACK may still be under way after
/// the sockets close): two equal reads 300 ms apart, at most ~15 s.
fn settled(inj: &LossInjector) -> LossCounters {
    let mut last = inj.counters().unwrap();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(300));
        let now = inj.counters().unwrap();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("loss counters still moving after 15 s: {last:?}");
}

#[test]
fn ten_percent_loss_is_on_the_wire_and_kernel_tcp_recovers_byte_exact() {
    let p = pair();
    let inj = attach(
        &p,
        LossConfig {
            drop_ppm: 100_000,
            ..Default::default()
        },
    );
    let (up, down) = (pattern(1, 4 << 20), pattern(2, 4 << 20));
    transfer(&p, &up, &down);
    let c = settled(&inj);
    eprintln!("{c:?}");
    // 4 MiB of 1448-byte segments is ~2900 data segments, plus ACKs for the other direction.
    assert!(c.seen > 2_000, "{c:?}");
    let share = c.dropped as f64 / c.seen as f64;
    // Binomial share 0.10 with n > 2000: sd < 0.007; [0.06, 0.14] is > 5 sd.
    assert!(
        (0.06..=0.14).contains(&share),
        "dropped share {share:.3}: {c:?}"
    );
    assert_eq!(c.duplicated, 0);
}

#[test]
fn full_loss_times_out_a_connect_and_set_or_drop_lifts_it() {
    let p = pair();
    let (_l, addr) = listen(&p);
    let mut inj = attach(
        &p,
        LossConfig {
            drop_ppm: 1_000_000,
            ..Default::default()
        },
    );
    let err = connect(&p, addr, Duration::from_millis(1500)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let c = inj.counters().unwrap();
    // The SYN and (after ~1 s) its retransmission, all dropped.
    assert!(c.seen >= 1 && c.dropped == c.seen, "{c:?}");

    inj.set(LossConfig::default()).unwrap();
    drop(connect(&p, addr, Duration::from_secs(5)).expect("connect with loss off"));

    inj.set(LossConfig {
        drop_ppm: 1_000_000,
        ..Default::default()
    })
    .unwrap();
    assert!(connect(&p, addr, Duration::from_millis(500)).is_err());
    // Dropping the injector closes its link: the program leaves the interface.
    drop(inj);
    drop(connect(&p, addr, Duration::from_secs(5)).expect("connect after detach"));
}

/// Listener on a fixed port below the kernel's ephemeral range (32768..), so no client port
/// can be equal to it by chance. The namespaces are fresh, so the port is free.
fn listen_on(p: &VethPair, port: u16) -> (TcpListener, SocketAddr) {
    let l = p
        .in_stack(move || TcpListener::bind((STACK_ADDR, port)))
        .expect("enter stack ns")
        .expect("bind listener");
    let addr = l.local_addr().unwrap();
    (l, addr)
}

#[test]
fn every_nth_drops_exactly_one_in_n_of_the_port() {
    let p = pair();
    let (filtered, filtered_addr) = listen_on(&p, 5001);
    let (unfiltered, unfiltered_addr) = listen_on(&p, 5002);
    let inj = attach(
        &p,
        LossConfig {
            every_nth: Some(10),
            port: Some(5001),
            ..Default::default()
        },
    );
    let (up, down) = (pattern(3, 1 << 20), pattern(4, 256 << 10));
    // Traffic on another port is neither counted nor dropped.
    transfer_via(&p, &unfiltered, unfiltered_addr, &up, &down);
    let c = settled(&inj);
    assert_eq!((c.seen, c.dropped), (0, 0), "other port matched: {c:?}");
    assert!(c.other > 500, "{c:?}");

    transfer_via(&p, &filtered, filtered_addr, &up, &down);
    let c = settled(&inj);
    eprintln!("{c:?}");
    assert!(c.seen > 500, "{c:?}");
    // The n-th, 2n-th, ... matching packet since attach: exactly floor(seen / n).
    assert_eq!(c.dropped, c.seen / 10, "{c:?}");
    assert_eq!(c.duplicated, 0);
}

/// `TcpExt` counter `name` of the calling thread's network namespace.
fn tcp_ext(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat").expect("read netstat");
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == name)
        .expect(name);
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[test]
fn duplicates_reach_the_receiver_and_tcp_stays_byte_exact() {
    let p = pair();
    let inj = attach(
        &p,
        LossConfig {
            dup_ppm: 100_000,
            ..Default::default()
        },
    );
    let (up, down) = (pattern(5, 1 << 20), pattern(6, 1 << 20));
    transfer(&p, &up, &down);
    let c = settled(&inj);
    eprintln!("{c:?}");
    assert!(c.seen > 500 && c.dropped == 0, "{c:?}");
    let share = c.duplicated as f64 / c.seen as f64;
    assert!(
        (0.04..=0.16).contains(&share),
        "duplicated share {share:.3}: {c:?}"
    );
    // The receiver saw duplicate data segments: it answered them with D-SACKs (RFC 2883).
    let dsacks = p.in_stack(|| tcp_ext("TCPDSACKOldSent")).unwrap();
    assert!(dsacks > 0, "no D-SACK sent by the stack side");
}
