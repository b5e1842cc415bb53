//! AF_XDP device on a real veth pair (root only): a Linux peer's SYN reaches our RX ring
//! with a valid checksum, frames we transmit reach the peer, RX frames are recycled, and
//! zero-copy on veth fails with the documented message.
//!
//! Each test builds its own namespaces (`harness::VethPair`, 198.18.0.0/24, per-run names,
//! removed on drop also when the test panics) and attaches the steering program with a
//! bpf_link. Every loop is bounded in iterations and time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant as StdInstant};

use xdptcp::phy::{AfXdpConfig, AfXdpDevice, AfXdpError, Device};
use xdptcp::time::Instant;
use xdptcp::wire::{self, SeqNum};
use xdptcp_harness::{require_root, VethOptions, VethPair, PEER_ADDR, STACK_ADDR};
use xdptcp_xdp::{AttachOptions, Steering};

/// A small UMEM: 64 RX frames (so that 1000 received frames prove recycling) + 64 TX frames.
fn small_cfg() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 128,
        frame_size: 2048,
        fill_size: 64,
        comp_size: 64,
        rx_size: 64,
        tx_size: 64,
        zero_copy: false,
        need_wakeup: true,
    }
}

/// Field order is drop order: socket, then program, then the namespaces.
struct Rig {
    dev: AfXdpDevice,
    steering: Steering,
    pair: VethPair,
}

/// Veth pair + steering program steering `port` on the stack address + socket on queue 0.
fn rig(port: u16) -> Rig {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let guard = pair.enter_stack_ns().expect("entering the stack namespace");
    let mut steering = Steering::attach(&pair.stack_if, AttachOptions { frags: false })
        .expect("attaching the steering program");
    steering.add_listen(STACK_ADDR, port).unwrap();
    let dev = AfXdpDevice::open(&pair.stack_if, 0, small_cfg()).expect("opening AF_XDP");
    steering.register_xsk(0, dev.fd()).unwrap();
    drop(guard);
    Rig {
        dev,
        steering,
        pair,
    }
}

fn now() -> Instant {
    xdptcp::clock::now()
}

/// Receives until `want` frames have arrived, for at most `limit` and 1M polls.
/// Returns how many arrived.
fn recv_frames(
    dev: &mut AfXdpDevice,
    want: usize,
    limit: Duration,
    mut on_frame: impl FnMut(&[u8]),
) -> usize {
    let deadline = StdInstant::now() + limit;
    let mut got = 0;
    for _ in 0..1_000_000 {
        if got >= want || StdInstant::now() > deadline {
            break;
        }
        let n = dev.recv(now(), want - got, &mut on_frame);
        if n == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        got += n;
    }
    got
}

// ---- minimal frame building and checking (independent of the stack's wire layer) ----

fn csum_sum(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// RFC 9293 §3.1 / RFC 768: checksum over the pseudo-header and the L4 segment.
fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = proto;
    pseudo[10..12].copy_from_slice(&(seg.len() as u16).to_be_bytes());
    csum_fold(csum_sum(csum_sum(0, &pseudo), seg))
}

struct Ends {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

/// Ethernet + IPv4 (no options, DF) + `l4` with its checksum at `csum_at` filled in.
fn frame(e: &Ends, proto: u8, mut l4: Vec<u8>, csum_at: usize) -> Vec<u8> {
    let c = l4_checksum(e.src, e.dst, proto, &l4);
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&e.dst_mac);
    f.extend_from_slice(&e.src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + l4.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&e.src.octets());
    ip[16..20].copy_from_slice(&e.dst.octets());
    let hc = csum_fold(csum_sum(0, &ip));
    ip[10..12].copy_from_slice(&hc.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

struct Tcp {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
}

fn tcp_frame(e: &Ends, t: &Tcp, payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&t.sport.to_be_bytes());
    seg[2..4].copy_from_slice(&t.dport.to_be_bytes());
    seg[4..8].copy_from_slice(&t.seq.to_be_bytes());
    seg[8..12].copy_from_slice(&t.ack.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = t.flags;
    seg[14..16].copy_from_slice(&1024u16.to_be_bytes());
    seg.extend_from_slice(payload);
    frame(e, 6, seg, 16)
}

fn udp_frame(e: &Ends, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut dgram = vec![0u8; 8];
    dgram[0..2].copy_from_slice(&sport.to_be_bytes());
    dgram[2..4].copy_from_slice(&dport.to_be_bytes());
    dgram[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    dgram.extend_from_slice(payload);
    frame(e, 17, dgram, 6)
}

/// A parsed IPv4/TCP frame whose IPv4 header and TCP checksums verify.
#[derive(Debug)]
struct TcpSeen {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: Vec<u8>,
}

/// Parses an Ethernet/IPv4/TCP frame; `Err` says which check failed.
fn parse_tcp(f: &[u8]) -> Result<TcpSeen, String> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return Err("not IPv4".into());
    }
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || ip[9] != 6 {
        return Err(format!("bad IPv4 header or not TCP: {:02x?}", &ip[..20]));
    }
    if csum_fold(csum_sum(0, &ip[..ihl])) != 0 {
        return Err("IPv4 header checksum".into());
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let seg = &ip[ihl..total];
    if seg.len() < 20 || usize::from(seg[12] >> 4) * 4 > seg.len() {
        return Err("short TCP header".into());
    }
    // A correct checksum makes the sum over pseudo-header + segment fold to zero.
    if l4_checksum(src, dst, 6, seg) != 0 {
        return Err("TCP checksum".into());
    }
    let doff = usize::from(seg[12] >> 4) * 4;
    Ok(TcpSeen {
        dst_mac: f[0..6].try_into().unwrap(),
        src_mac: f[6..12].try_into().unwrap(),
        src,
        dst,
        sport: u16::from_be_bytes([seg[0], seg[1]]),
        dport: u16::from_be_bytes([seg[2], seg[3]]),
        seq: u32::from_be_bytes(seg[4..8].try_into().unwrap()),
        flags: seg[13],
        payload: seg[doff..].to_vec(),
    })
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

#[test]
fn peer_syn_arrives_with_valid_checksum_and_our_rst_refuses_it() {
    const PORT: u16 = 7001;
    let Rig {
        mut dev,
        steering,
        pair,
    } = rig(PORT);
    let before = steering.counters().unwrap();

    let (syn, connect) = std::thread::scope(|s| {
        let peer = s.spawn(|| {
            pair.in_peer(|| {
                let to = SocketAddr::from((STACK_ADDR, PORT));
                TcpStream::connect_timeout(&to, Duration::from_secs(5))
            })
        });
        let mut syn: Option<Result<TcpSeen, String>> = None;
        let mut wire_ok = None;
        recv_frames(&mut dev, 1, Duration::from_secs(4), |f| {
            syn = Some(parse_tcp(f));
            // The stack's own wire layer must accept the kernel's segment too.
            wire_ok = Some(wire::parse_tcp_frame(f).map(|t| (t.tcp.flags.syn(), t.tcp.dst_port)));
        });
        let syn = syn
            .expect("no frame in the AF_XDP RX ring within 4 s")
            .unwrap();
        assert_eq!(wire_ok.unwrap(), Ok((true, PORT)));
        // RFC 9293 §3.10.7.3: an acceptable RST in SYN-SENT (ACK = ISS + 1) refuses the
        // connection; the peer's connect() sees ECONNREFUSED only if our frame reached it.
        // Emitted by the wire layer straight into the UMEM frame.
        let rst = wire::TcpRepr {
            src_port: PORT,
            dst_port: syn.sport,
            seq: SeqNum(0),
            ack: SeqNum(syn.seq.wrapping_add(1)),
            flags: wire::TcpFlags::RST | wire::TcpFlags::ACK,
            window: 0,
            urgent: 0,
            options: wire::TcpOptions::default(),
            payload: &[],
        };
        let eth = wire::EthernetRepr {
            src_addr: wire::EthernetAddress(pair.stack_mac),
            dst_addr: wire::EthernetAddress(syn.src_mac),
            ethertype: wire::EtherType::Ipv4,
        };
        let len = wire::tcp_frame_len(&rst);
        let mut sent = Vec::new();
        dev.transmit(len, |buf| {
            wire::emit_tcp_frame(buf, &eth, STACK_ADDR, syn.src, 64, &rst);
            sent = buf.to_vec();
        })
        .expect("transmit");
        dev.flush(now());
        // Cross-check the emitted frame with the independent parser of this file.
        let ours = parse_tcp(&sent).expect("our RST parses and its checksums verify");
        assert_eq!((ours.flags, ours.dport), (RST | ACK, syn.sport));
        (syn, peer.join().unwrap())
    });

    assert_eq!(syn.flags & (SYN | ACK | RST), SYN, "{syn:?}");
    assert_eq!((syn.src, syn.dst, syn.dport), (PEER_ADDR, STACK_ADDR, PORT));
    assert_eq!((syn.src_mac, syn.dst_mac), (pair.peer_mac, pair.stack_mac));
    let err = connect
        .unwrap()
        .expect_err("connect must fail: nobody accepts");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

    let c = steering.counters().unwrap().since(&before);
    assert!(c.redirected >= 1, "{c:?}");
    let st = dev.stats();
    assert!(st.rx_frames >= 1 && st.rx_bytes >= 54, "{st:?}");
    assert_eq!(
        (st.tx_frames, st.tx_bytes, st.tx_full),
        (1, 54, 0),
        "{st:?}"
    );
    let full = dev.stats_full();
    assert_eq!(full.tx_completed, 1, "{full:?}");
    assert!(full.tx_kicks >= 1, "{full:?}");
    assert_eq!(full.kernel_tx_invalid_descs, 0, "{full:?}");
    assert_eq!(dev.tx_in_flight(), 0);
}

fn peer_rx_packets(pair: &VethPair) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/rx_packets", pair.peer_if);
    let out = pair
        .run_in_peer(&["cat", &path])
        .expect("reading peer counters");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn transmitted_udp_frames_reach_the_peer_socket() {
    const N: usize = 200; // more than the 64 TX frames and many 32-frame kicks
    let Rig {
        mut dev,
        steering: _steering,
        pair,
    } = rig(7002);
    let udp = pair
        .in_peer(|| UdpSocket::bind((PEER_ADDR, 0)))
        .unwrap()
        .expect("binding UDP in the peer namespace");
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let dport = udp.local_addr().unwrap().port();
    let ends = Ends {
        src_mac: pair.stack_mac,
        dst_mac: pair.peer_mac,
        src: STACK_ADDR,
        dst: PEER_ADDR,
    };
    let rx_before = peer_rx_packets(&pair);

    let mut received = Vec::new();
    let mut buf = [0u8; 64];
    let mut sent = 0;
    let deadline = StdInstant::now() + Duration::from_secs(10);
    // Batches of 40 (> 32 per kick): transmit, flush, then read them back before the next
    // batch so the peer's socket buffer never overflows.
    while sent < N && StdInstant::now() < deadline {
        let batch = (N - sent).min(40);
        for i in sent..sent + batch {
            let f = udp_frame(&ends, 9000, dport, format!("xdptcp {i:04}").as_bytes());
            dev.transmit(f.len(), |b| b.copy_from_slice(&f))
                .expect("transmit");
        }
        dev.flush(now());
        sent += batch;
        for _ in 0..batch {
            match udp.recv(&mut buf) {
                Ok(n) => received.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) => panic!("peer got {} of {sent} datagrams: {e}", received.len()),
            }
        }
    }
    let want: Vec<String> = (0..N).map(|i| format!("xdptcp {i:04}")).collect();
    assert_eq!(received, want);

    let st = dev.stats();
    assert_eq!((st.tx_frames, st.tx_full), (N as u64, 0), "{st:?}");
    assert_eq!(st.tx_bytes, N as u64 * (14 + 20 + 8 + 11), "{st:?}");
    let full = dev.stats_full();
    // 40 frames per batch need at least 2 kicks each in copy mode (32 per kick).
    assert!(full.tx_kicks >= 2 * (N as u64 / 40), "{full:?}");
    assert_eq!(full.tx_kick_errors, 0, "{full:?}");
    assert_eq!(full.tx_completed, N as u64, "{full:?}");
    assert_eq!((dev.tx_in_flight(), dev.tx_free()), (0, 64));
    assert!(peer_rx_packets(&pair) >= rx_before + N as u64);
}

/// An AF_PACKET socket in the peer namespace, for injecting hand-built frames.
struct RawSender {
    fd: OwnedFd,
    ifindex: i32,
    dst_mac: [u8; 6],
}

impl RawSender {
    fn new(pair: &VethPair) -> RawSender {
        let ifname = pair.peer_if.clone();
        let (fd, ifindex) = pair
            .in_peer(move || {
                // SAFETY: plain socket(2); protocol 0 = send only, receive nothing.
                let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
                assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
                // SAFETY: fd is a fresh descriptor we own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                (fd, xdptcp_xdp::ifindex(&ifname).expect("peer ifindex"))
            })
            .unwrap();
        RawSender {
            fd,
            ifindex: ifindex as i32,
            dst_mac: pair.stack_mac,
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: zeroed sockaddr_ll is valid; we fill the fields sendto needs.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&self.dst_mac);
        // SAFETY: buffer and address are valid for the given lengths.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, frame.len() as isize, "{}", io::Error::last_os_error());
    }
}

#[test]
fn rx_frames_are_recycled_across_many_batches() {
    const PORT: u16 = 7003;
    const N: u32 = 1000; // vs 64 RX frames in the UMEM
    const BURST: u32 = 32;
    let Rig {
        mut dev,
        steering,
        pair,
    } = rig(PORT);
    let raw = RawSender::new(&pair);
    let ends = Ends {
        src_mac: pair.peer_mac,
        dst_mac: pair.stack_mac,
        src: PEER_ADDR,
        dst: STACK_ADDR,
    };
    let before = steering.counters().unwrap();
    let mut seen: Vec<u32> = Vec::with_capacity(N as usize);
    let mut bad = Vec::new();
    for burst in 0..N / BURST + 1 {
        let first = burst * BURST;
        let last = (first + BURST).min(N);
        for i in first..last {
            let t = Tcp {
                sport: 40000,
                dport: PORT,
                seq: i,
                ack: 1,
                flags: ACK,
            };
            raw.send(&tcp_frame(&ends, &t, &i.to_be_bytes()));
        }
        let want = (last - first) as usize;
        let got = recv_frames(
            &mut dev,
            want,
            Duration::from_secs(2),
            |f| match parse_tcp(f) {
                Ok(t) if t.payload.len() == 4 => {
                    seen.push(u32::from_be_bytes(t.payload[..4].try_into().unwrap()))
                }
                other => bad.push(format!("{other:?}")),
            },
        );
        assert_eq!(got, want, "burst {burst}: {} frames so far", seen.len());
    }
    assert!(bad.is_empty(), "unexpected frames: {bad:?}");
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    let st = dev.stats_full();
    assert_eq!(st.dev.rx_frames, u64::from(N), "{st:?}");
    assert_eq!(st.dev.rx_dropped, 0, "{st:?}");
    assert_eq!((st.kernel_rx_ring_full, st.rx_invalid), (0, 0), "{st:?}");
    assert_eq!(
        steering.counters().unwrap().since(&before).redirected,
        u64::from(N)
    );
}

/// Opens queue 0, retrying (bounded: 200 x 10 ms) while the kernel still holds it: it frees
/// a closed socket's buffer pool from a workqueue, so an immediate re-bind can see EBUSY.
fn open_when_free(ifname: &str, cfg: AfXdpConfig) -> Result<AfXdpDevice, AfXdpError> {
    for _ in 0..200 {
        match AfXdpDevice::open(ifname, 0, cfg) {
            Err(AfXdpError::Socket { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) =>
            {
                std::thread::sleep(Duration::from_millis(10))
            }
            r => return r,
        }
    }
    AfXdpDevice::open(ifname, 0, cfg)
}

#[test]
fn zero_copy_on_veth_fails_with_a_clear_message_and_copy_mode_reopens() {
    let Rig {
        dev,
        mut steering,
        pair,
    } = rig(7004);
    // Unregister first so the program stops redirecting to a socket that is going away.
    steering.unregister_xsk(0).unwrap();
    drop(dev);
    let guard = pair.enter_stack_ns().unwrap();
    let zc = AfXdpConfig {
        zero_copy: true,
        ..small_cfg()
    };
    let err = open_when_free(&pair.stack_if, zc).expect_err("veth has no zero-copy");
    let reopened = open_when_free(&pair.stack_if, small_cfg());
    drop(guard);
    assert!(
        matches!(err, AfXdpError::ZeroCopyUnsupported { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "zero-copy not supported by {}'s driver; run without --zero-copy",
            pair.stack_if
        )
    );
    let dev = reopened.expect("copy mode binds again once the queue is free");
    steering.register_xsk(0, dev.fd()).unwrap();
}
