//! The flood generator of `synflood`: one copy-mode AF_XDP socket in TX mode on the client
//! veth (as the `ceiling`'s sender), writing every frame in place with fresh random fields:
//! SYNs or ACKs to the listening port from random sources in [`SPOOF_NET`] (198.19.0.0/16,
//! never another range) with random ports, or RSTs with random sequence numbers against
//! given established connections. Checksums are computed per frame (IPv4 and TCP), so the
//! receivers' checksum checks pass and every frame costs the receiver its full path.
//!
//! Memory: the device's UMEM (16 MiB, [`gen_cfg`]); the loop is bounded by its phase length
//! and the stop flags.

use crate::sys;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use xdptcp::phy::{AfXdpConfig, AfXdpDevice, Device};

/// Spoofed sources: 198.19.0.0/16 (inside the benchmark range 198.18.0.0/15). The server
/// namespace routes it back to the client veth, whose kernel (forwarding off, no address
/// there) drops the replies and counts them as `Ip InAddrErrors`.
pub const SPOOF_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
/// Frames per transmit burst.
pub const BURST: usize = 64;
/// Ethernet + IPv4 + TCP with one MSS option: 58 bytes.
pub const FRAME_LEN: usize = 14 + 20 + 24;

/// What the generator sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SYN (MSS 1460) from a random 198.19.x.y and port to the listening port.
    Syn,
    /// Bare ACK with random sequence and acknowledgment numbers, from a random 198.19.x.y
    /// and port to the listening port (no connection or cookie matches it).
    Ack,
    /// RST with a random sequence number from the legitimate client's address and one of
    /// these ports (its established connections), round robin (RFC 5961 blind reset).
    Rst(Vec<u16>),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Syn => "syn",
            Kind::Ack => "ack",
            Kind::Rst(_) => "rst",
        }
    }
}

/// Where the frames go.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The legitimate client's address (the source of `Rst` frames).
    pub client: Ipv4Addr,
    pub server: Ipv4Addr,
    pub port: u16,
}

/// What one generator run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    /// Frames the kernel completed (sent on the veth).
    pub frames: u64,
    pub seconds: f64,
}

/// The generator's device: a UMEM of 8192 frames, TX ring 4096.
pub fn gen_cfg() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 8192,
        fill_size: 4096,
        comp_size: 4096,
        rx_size: 4096,
        tx_size: 4096,
        ..AfXdpConfig::default()
    }
}

/// xorshift64*: fast, good enough for spoofed fields.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Writes one frame of `kind` into `f` (exactly [`FRAME_LEN`] bytes); `i` picks the RST
/// tuple (round robin).
pub fn write_frame(f: &mut [u8], t: &Target, kind: &Kind, rng: &mut Rng, i: u64) {
    let r = rng.next_u64();
    let (src, sport, flags, ack) = match kind {
        Kind::Syn | Kind::Ack => {
            let o = SPOOF_NET.octets();
            let src = Ipv4Addr::new(o[0], o[1], (r >> 8) as u8, r as u8);
            let sport = 1024 + ((r >> 16) as u16) % 64000;
            if *kind == Kind::Syn {
                (src, sport, 0x02u8, 0u32)
            } else {
                (src, sport, 0x10, (r >> 32) as u32 ^ 0x5a5a_5a5a)
            }
        }
        Kind::Rst(ports) => {
            let p = ports.get(i as usize % ports.len().max(1)).copied();
            (t.client, p.unwrap_or(1024), 0x04, 0)
        }
    };
    let seq = rng.next_u64() as u32;
    f[..6].copy_from_slice(&t.dst_mac);
    f[6..12].copy_from_slice(&t.src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip.copy_from_slice(&[
        0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&t.server.octets());
    let c = fold(sum16(ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp = &mut f[34..58];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&t.port.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 6 << 4; // 24-byte header
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    tcp[16..20].fill(0); // checksum, urgent pointer
    tcp[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let pseudo = sum16(&src.octets()) + sum16(&t.server.octets()) + 6 + 24;
    let c = fold(pseudo + sum16(tcp));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Sends `kind` frames as fast as the device takes them (or at most `rate` frames/s) until
/// `stop` (or `limit`, or a signal). `live` counts completed frames as they go. The caller
/// pins the thread.
pub fn run(
    dev: &mut AfXdpDevice,
    t: &Target,
    kind: &Kind,
    rate: Option<f64>,
    stop: &AtomicBool,
    limit: Duration,
    live: &AtomicU64,
) -> Sent {
    let c0 = dev.stats_full().tx_completed;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let start = Instant::now();
    let mut n = 0u64;
    while !stop.load(Relaxed) && start.elapsed() < limit && !sys::stopped() {
        if let Some(r) = rate {
            let allowed = (r * start.elapsed().as_secs_f64()) as u64;
            if n + BURST as u64 > allowed {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        for _ in 0..BURST {
            let ok = dev.transmit(FRAME_LEN, |f| write_frame(f, t, kind, &mut rng, n));
            if ok.is_err() {
                break;
            }
            n += 1;
        }
        dev.flush(xdptcp::clock::now());
        live.store(dev.stats_full().tx_completed - c0, Relaxed);
    }
    let seconds = start.elapsed().as_secs_f64();
    for _ in 0..1000 {
        if dev.tx_in_flight() == 0 {
            break;
        }
        dev.flush(xdptcp::clock::now());
    }
    Sent {
        frames: dev.stats_full().tx_completed - c0,
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdptcp::wire;

    fn target() -> Target {
        Target {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            client: Ipv4Addr::new(198, 18, 0, 2),
            server: Ipv4Addr::new(198, 18, 0, 1),
            port: 7,
        }
    }

    #[test]
    fn frames_parse_with_valid_checksums_and_stay_in_range() {
        let mut rng = Rng::new(1);
        let mut f = [0u8; FRAME_LEN];
        for kind in [Kind::Syn, Kind::Ack, Kind::Rst(vec![40000, 40001])] {
            for i in 0..200 {
                write_frame(&mut f, &target(), &kind, &mut rng, i);
                let p = wire::parse_tcp_frame(&f).expect("valid checksums");
                assert_eq!((p.tcp.dst_port, p.ip.dst_addr), (7, target().server));
                let src = p.ip.src_addr.octets();
                match &kind {
                    Kind::Syn => {
                        assert_eq!(src[..2], [198, 19]);
                        assert_eq!(p.tcp.flags, wire::TcpFlags::SYN);
                        assert_eq!(p.tcp.options.mss, Some(1460));
                    }
                    Kind::Ack => {
                        assert_eq!(src[..2], [198, 19]);
                        assert_eq!(p.tcp.flags, wire::TcpFlags::ACK);
                    }
                    Kind::Rst(_) => {
                        assert_eq!(p.ip.src_addr, target().client);
                        assert_eq!(p.tcp.src_port, 40000 + (i % 2) as u16);
                        assert_eq!(p.tcp.flags, wire::TcpFlags::RST);
                    }
                }
            }
        }
    }
}
