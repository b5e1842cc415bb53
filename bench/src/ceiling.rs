//! The physical ceiling of the path: raw AF_XDP frame rates on the same
//! kind of veth pair the stack runs on, so a reader sees how close the stack gets to them.
//!
//! Set-up: `xdptcp_harness::VethPair` (stack side 198.18.0.1, peer 198.18.0.2, checksum
//! offload off), the steering program (`xdptcp_xdp::Steering`) attached to the stack side
//! with one listening port, and one copy-mode `AfXdpDevice` on queue 0 of each end. The stack
//! side's loop runs on core 0, the peer's on core 1 (as the pairings pin server and client).
//! Measured, each for one bounded phase:
//! - `rx`: the peer's AF_XDP socket blasts 64-byte and then 1514-byte TCP frames to the
//!   steered port; the stack side's receive loop counts them (rate = frames / time between
//!   first and last frame). At 1514 B it is the bound of a stack ↔ stack bulk flow: the
//!   sending core runs the AF_XDP transmit, the receiver's XDP program and both copies.
//! - `tx`: the stack side transmits 64-byte and 1514-byte frames (MTU 1500) as fast as it
//!   can, kicks included; counted by the peer interface's `rx_packets`
//!   (/sys/class/net/<if>/statistics read inside the peer namespace). The frames carry an
//!   unused destination MAC, so the peer kernel drops them at its first check (not for this
//!   host) and the sending core pays as little as possible for the sink.
//! - `l2fwd`: the classic loop on the stack side (receive, swap MACs, IPs and ports, transmit
//!   back); the peer (with its own steering program and socket) keeps at most [`WINDOW`]
//!   frames in flight and counts the ones that come back: a round-trip rate.
//!
//! On veth the XDP program and the copy into the receiving UMEM run in the *sending* CPU's
//! softirq, so every rate here is bound by one core doing both ends' kernel work.
//! Memory: two UMEMs (stack 40 MiB, the `AfXdpConfig` default; peer 16 MiB) plus
//! [`BURST`] × 2 KiB of scratch; every loop is bounded by the phase length plus 2 s.

use crate::client::Progress;
use crate::error::{bail, Context, Result};
use crate::sys;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use xdptcp::phy::{AfXdpConfig, AfXdpDevice, AfXdpStats, Device};
use xdptcp_harness::{NetnsGuard, VethOptions, VethPair, PEER_ADDR, STACK_ADDR};

use xdptcp::wire;
use xdptcp_xdp::{AttachOptions, Steering};

/// The steered port on the stack side.
pub const STACK_PORT: u16 = 7100;
/// The peer's port (steered to the peer's socket during `l2fwd`).
pub const PEER_PORT: u16 = 40000;
/// Frames per transmit burst and per receive call.
pub const BURST: usize = 64;
/// Frames the `l2fwd` peer keeps in flight.
pub const WINDOW: u64 = 512;
/// The small and the large frame (Ethernet header included, no FCS).
pub const SMALL: usize = 64;
pub const LARGE: usize = 1514;
/// How the `rx` phase's frames are sent.
pub const SENDER: &str = "AF_XDP socket (copy mode, TX only) on the peer veth";
/// After this long without a returning frame, the `l2fwd` peer assumes its window lost and
/// reopens it (a reset; on a loaded machine a descheduled forwarder can cause one too).
const LOST_AFTER: Duration = Duration::from_millis(20);
/// Extra time any loop may run beyond its phase (draining, stragglers).
const GRACE: Duration = Duration::from_secs(2);
/// A destination MAC nobody on the pair owns (locally administered).
const UNUSED_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// One measured rate.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CeilingRow {
    /// `rx`, `tx` or `l2fwd`.
    pub test: String,
    /// Ethernet frame length in bytes (no FCS).
    pub frame_len: usize,
    /// Frames counted by the measuring end.
    pub frames: u64,
    /// Frames the other end sent (its kernel completed them) that were not counted: dropped
    /// on the way (e.g. the receiver was descheduled and its fill ring ran dry), or, for
    /// `l2fwd`, still in flight at the end.
    pub missing: u64,
    pub seconds: f64,
    /// Million frames per second.
    pub mpps: f64,
    /// frame_len × 8 × frames / seconds, in Gbit/s (no preamble, FCS or gap).
    pub gbps: f64,
}

impl CeilingRow {
    pub fn new(test: &str, frame_len: usize, frames: u64, sent: u64, seconds: f64) -> Self {
        let s = seconds.max(1e-9);
        CeilingRow {
            test: test.into(),
            frame_len,
            frames,
            missing: sent.saturating_sub(frames),
            seconds,
            mpps: frames as f64 / s / 1e6,
            gbps: (frames * frame_len as u64) as f64 * 8.0 / s / 1e9,
        }
    }
}

/// The ceiling section of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ceiling {
    pub rows: Vec<CeilingRow>,
    /// Per phase: counts from both ends (sent, completed, kernel drops, steering counters).
    pub details: Value,
    /// Why the measurement stopped early, if it did (rows holds what was measured).
    pub error: Option<String>,
}

impl Ceiling {
    pub fn row(&self, test: &str, frame_len: usize) -> Option<&CeilingRow> {
        self.rows
            .iter()
            .find(|r| r.test == test && r.frame_len == frame_len)
    }
}

/// Runs all phases, each for `phase` (a few seconds are plenty: the rates are steady).
pub fn run(phase: Duration) -> Ceiling {
    let mut c = Ceiling {
        details: json!({ "sender": SENDER, "window": WINDOW }),
        ..Ceiling::default()
    };
    if let Err(e) = run_inner(phase, &mut c) {
        c.error = Some(format!("{e:#}"));
    }
    c
}

fn peer_cfg() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 8192,
        fill_size: 4096,
        comp_size: 4096,
        rx_size: 4096,
        tx_size: 4096,
        ..AfXdpConfig::default()
    }
}

fn run_inner(phase: Duration, c: &mut Ceiling) -> Result<()> {
    if !sys::is_root() {
        bail!("the ceiling needs root (network namespaces, XDP): run as root");
    }
    let ncores = sys::num_cores();
    let cores = (0, 1 % ncores);
    // Declaration order is drop order reversed: sockets go first, then programs, then the pair.
    let pair = VethPair::new(VethOptions::default()).context("creating the veth pair")?;
    let guard = pair.enter_stack_ns()?;
    let mut steer = Steering::attach(&pair.stack_if, AttachOptions::default())
        .context("attaching the steering program (stack side)")?;
    steer.add_listen(STACK_ADDR, STACK_PORT)?;
    let mut sdev = AfXdpDevice::open(&pair.stack_if, 0, AfXdpConfig::default())
        .context("AF_XDP socket (stack side)")?;
    steer.register_xsk(0, sdev.fd())?;
    drop(guard);
    let guard = NetnsGuard::enter(&pair.peer_ns)?;
    let mut pdev =
        AfXdpDevice::open(&pair.peer_if, 0, peer_cfg()).context("AF_XDP socket (peer side)")?;
    drop(guard);

    // rx at 64 B (the packet rate) and 1514 B (the byte rate a stack ↔ stack bulk flow is
    // bound by: AF_XDP transmit, the receiver's XDP program and copy, all on the sender's core).
    for len in [SMALL, LARGE] {
        sys_check()?;
        let frame = tcp_frame(pair.peer_mac, pair.stack_mac, false, len);
        let before = steer.counters()?;
        let (row, d) = rx_phase(&mut sdev, &mut pdev, &frame, phase, cores);
        let redirected = steer.counters()?.since(&before).redirected;
        let key = if len == SMALL {
            "rx".to_string()
        } else {
            format!("rx_{len}")
        };
        c.details[key] = json!({ "steering_redirected": redirected, "counts": d });
        c.rows.push(row);
    }
    let to_stack = tcp_frame(pair.peer_mac, pair.stack_mac, false, SMALL);
    for len in [SMALL, LARGE] {
        sys_check()?;
        let frame = tcp_frame(pair.stack_mac, UNUSED_MAC, true, len);
        let (row, d) = tx_phase(&pair, &mut sdev, &frame, phase, cores.0)?;
        c.details[format!("tx_{len}")] = d;
        c.rows.push(row);
    }
    sys_check()?;
    let guard = NetnsGuard::enter(&pair.peer_ns)?;
    let mut psteer = Steering::attach(&pair.peer_if, AttachOptions::default())
        .context("attaching the steering program (peer side, l2fwd)")?;
    psteer.add_listen(PEER_ADDR, PEER_PORT)?;
    psteer.register_xsk(0, pdev.fd())?;
    drop(guard);
    let (row, d) = l2fwd_phase(&mut sdev, &mut pdev, &to_stack, phase, cores);
    c.details["l2fwd"] = d;
    c.rows.push(row);
    psteer.unregister_xsk(0)?;
    steer.unregister_xsk(0)?;
    Ok(())
}

fn sys_check() -> Result<()> {
    if sys::stopped() {
        bail!("stopped by signal");
    }
    Ok(())
}

/// A TCP/IPv4 frame of exactly `len` bytes with valid checksums: peer → stack port, or
/// (`from_stack`) stack port → peer.
pub fn tcp_frame(src_mac: [u8; 6], dst_mac: [u8; 6], from_stack: bool, len: usize) -> Vec<u8> {
    let payload = vec![0x5a; len.saturating_sub(54)];
    let (sport, dport, src, dst) = if from_stack {
        (STACK_PORT, PEER_PORT, STACK_ADDR, PEER_ADDR)
    } else {
        (PEER_PORT, STACK_PORT, PEER_ADDR, STACK_ADDR)
    };
    let tcp = wire::TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: wire::SeqNum(1),
        ack: wire::SeqNum(1),
        flags: wire::TcpFlags::ACK,
        window: 1024,
        urgent: 0,
        options: wire::TcpOptions::default(),
        payload: &payload,
    };
    let eth = wire::EthernetRepr {
        src_addr: wire::EthernetAddress(src_mac),
        dst_addr: wire::EthernetAddress(dst_mac),
        ethertype: wire::EtherType::Ipv4,
    };
    let mut f = vec![0u8; wire::tcp_frame_len(&tcp)];
    wire::emit_tcp_frame(&mut f, &eth, src, dst, 64, &tcp);
    f
}

/// The l2fwd rewrite in place: swap Ethernet addresses, IPv4 addresses and TCP/UDP ports.
/// Checksums stay valid (a one's-complement sum does not depend on the order of its terms).
/// Returns false (frame to drop) unless it is IPv4 without options carrying TCP or UDP.
pub fn swap_in_place(f: &mut [u8]) -> bool {
    if f.len() < 38 || f[12..14] != [0x08, 0x00] || f[14] != 0x45 || !matches!(f[23], 6 | 17) {
        return false;
    }
    for (a, b, n) in [(0, 6, 6), (26, 30, 4), (34, 36, 2)] {
        for i in 0..n {
            f.swap(a + i, b + i);
        }
    }
    true
}

/// Counts frames on `dev` until `done` and then [`LOST_AFTER`] of silence, or the bound.
/// Returns (frames, seconds between the first and the last frame).
fn rx_count(
    dev: &mut AfXdpDevice,
    core: usize,
    done: &AtomicBool,
    limit: Duration,
    p: &Progress,
) -> (u64, f64) {
    sys::pin(core);
    let start = Instant::now();
    let (mut n, mut first, mut last) = (0u64, None, start);
    loop {
        let k = dev.recv(xdptcp::clock::now(), 4 * BURST, |_| {});
        let now = Instant::now();
        if k > 0 {
            first.get_or_insert(now);
            last = now;
            n += k as u64;
            p.ok.store(n, Relaxed);
        }
        // Stop only right after an empty receive: a thread descheduled past the idle time
        // still drains the ring first.
        let quiet = k == 0 && done.load(Relaxed) && now - last > LOST_AFTER;
        if quiet || now - start > limit || sys::stopped() {
            break;
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    (n, secs)
}

/// Transmits `frame` as fast as the device takes it for `phase`, then drains the TX ring.
/// Returns seconds spent.
fn blast(dev: &mut AfXdpDevice, core: usize, frame: &[u8], phase: Duration, p: &Progress) -> f64 {
    sys::pin(core);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < phase && !sys::stopped() {
        for _ in 0..BURST {
            if dev
                .transmit(frame.len(), |b| b.copy_from_slice(frame))
                .is_err()
            {
                break;
            }
            n += 1;
        }
        dev.flush(xdptcp::clock::now());
        p.ok.store(n, Relaxed);
    }
    let secs = start.elapsed().as_secs_f64();
    // Reap every completion before the counts are read (a frame the other end received is
    // then counted as sent): kicks until nothing is in flight, at most 1 s. A tight loop of
    // a fixed count could end while the kernel still held completions back.
    let end = Instant::now() + Duration::from_secs(1);
    while dev.tx_in_flight() > 0 && Instant::now() < end {
        dev.flush(xdptcp::clock::now());
        std::thread::sleep(Duration::from_micros(50));
    }
    secs
}

fn counts(before: &AfXdpStats, after: &AfXdpStats) -> Value {
    json!({
        "tx_submitted": after.dev.tx_frames - before.dev.tx_frames,
        "tx_completed": after.tx_completed - before.tx_completed,
        "tx_kicks": after.tx_kicks - before.tx_kicks,
        "rx_frames": after.dev.rx_frames - before.dev.rx_frames,
        "kernel_rx_dropped": after.kernel_rx_dropped - before.kernel_rx_dropped,
        "kernel_rx_ring_full": after.kernel_rx_ring_full - before.kernel_rx_ring_full,
        "kernel_rx_fill_ring_empty":
            after.kernel_rx_fill_ring_empty - before.kernel_rx_fill_ring_empty,
    })
}

fn rx_phase(
    sdev: &mut AfXdpDevice,
    pdev: &mut AfXdpDevice,
    frame: &[u8],
    phase: Duration,
    (score, pcore): (usize, usize),
) -> (CeilingRow, Value) {
    let (s0, p0) = (sdev.stats_full(), pdev.stats_full());
    let done = AtomicBool::new(false);
    let label = format!("ceiling rx {} B", frame.len());
    let p = Progress::default();
    let (got, secs) = std::thread::scope(|s| {
        let rx = s.spawn(|| rx_count(sdev, score, &done, phase + GRACE, &p));
        let tx = s.spawn(|| blast(pdev, pcore, frame, phase, &Progress::default()));
        progress(&label, phase, &p, || tx.is_finished());
        let _ = tx.join();
        done.store(true, Relaxed);
        rx.join().unwrap_or((0, 0.0))
    });
    let sent = pdev.stats_full().tx_completed - p0.tx_completed;
    let d = json!({
        "stack": counts(&s0, &sdev.stats_full()),
        "peer": counts(&p0, &pdev.stats_full()),
    });
    (CeilingRow::new("rx", frame.len(), got, sent, secs), d)
}

/// The peer interface's `rx_packets` (sysfs shows the namespace it was mounted in, so it is
/// read by a process in the peer namespace).
fn peer_rx_packets(pair: &VethPair) -> Result<u64> {
    let path = format!("/sys/class/net/{}/statistics/rx_packets", pair.peer_if);
    let out = pair.run_in_peer(&["cat", &path])?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("{path}: not a number: {text:?}"))
}

fn tx_phase(
    pair: &VethPair,
    dev: &mut AfXdpDevice,
    frame: &[u8],
    phase: Duration,
    core: usize,
) -> Result<(CeilingRow, Value)> {
    let label = format!("ceiling tx {} B", frame.len());
    let rx0 = peer_rx_packets(pair)?;
    let s0 = dev.stats_full();
    let p = Progress::default();
    let secs = std::thread::scope(|s| {
        let tx = s.spawn(|| blast(dev, core, frame, phase, &p));
        progress(&label, phase, &p, || tx.is_finished());
        tx.join().unwrap_or(0.0)
    });
    let got = peer_rx_packets(pair)?.saturating_sub(rx0);
    let sent = dev.stats_full().tx_completed - s0.tx_completed;
    let d = json!({ "peer_rx_packets": got, "stack": counts(&s0, &dev.stats_full()) });
    Ok((CeilingRow::new("tx", frame.len(), got, sent, secs), d))
}

/// The stack side of l2fwd: receive a burst, rewrite, transmit it back, flush.
/// Returns (forwarded, dropped: not IPv4/TCP or no TX frame).
fn forward(dev: &mut AfXdpDevice, core: usize, done: &AtomicBool, limit: Duration) -> (u64, u64) {
    sys::pin(core);
    let start = Instant::now();
    let mut scratch = vec![[0u8; 2048]; BURST];
    let mut lens = [0usize; BURST];
    let (mut fwd, mut dropped) = (0u64, 0u64);
    while !done.load(Relaxed) && start.elapsed() < limit && !sys::stopped() {
        let mut k = 0;
        let now = xdptcp::clock::now();
        // The device lends a frame only during the callback: copy it out (64 B here); a
        // zero-copy l2fwd would put the same descriptor on the TX ring instead.
        dev.recv(now, BURST, |f| {
            if f.len() <= scratch[k].len() {
                scratch[k][..f.len()].copy_from_slice(f);
                lens[k] = f.len();
                k += 1;
            }
        });
        for (buf, &len) in scratch.iter_mut().zip(&lens).take(k) {
            let f = &mut buf[..len];
            if swap_in_place(f) && dev.transmit(len, |b| b.copy_from_slice(f)).is_ok() {
                fwd += 1;
            } else {
                dropped += 1;
            }
        }
        if k > 0 || dev.tx_in_flight() > 0 {
            dev.flush(now);
        }
    }
    (fwd, dropped)
}

/// The l2fwd peer: keeps up to [`WINDOW`] frames in flight, counts the ones that return.
/// Returns (sent, returned, window resets, seconds).
fn ping(
    dev: &mut AfXdpDevice,
    core: usize,
    frame: &[u8],
    phase: Duration,
    p: &Progress,
) -> (u64, u64, u64, f64) {
    sys::pin(core);
    let start = Instant::now();
    let (mut sent, mut back, mut resets, mut inflight) = (0u64, 0u64, 0u64, 0u64);
    let mut last_rx = start;
    while start.elapsed() < phase && !sys::stopped() {
        let room = (WINDOW - inflight).min(BURST as u64);
        for _ in 0..room {
            if dev
                .transmit(frame.len(), |b| b.copy_from_slice(frame))
                .is_err()
            {
                break;
            }
            sent += 1;
            inflight += 1;
        }
        let now = xdptcp::clock::now();
        dev.flush(now);
        let mut n = 0u64;
        dev.recv(now, 4 * BURST, |f| {
            // Only our frames, rewritten: from the stack's port to ours.
            if f.len() >= 38 && f[34..36] == STACK_PORT.to_be_bytes() {
                n += 1;
            }
        });
        back += n;
        // A frame counted lost by a reset may still come back: never below zero.
        inflight = inflight.saturating_sub(n);
        if n > 0 {
            last_rx = Instant::now();
            p.ok.store(back, Relaxed);
        } else if inflight > 0 && last_rx.elapsed() > LOST_AFTER {
            resets += 1;
            inflight = 0;
            last_rx = Instant::now();
        }
    }
    (sent, back, resets, start.elapsed().as_secs_f64())
}

fn l2fwd_phase(
    sdev: &mut AfXdpDevice,
    pdev: &mut AfXdpDevice,
    frame: &[u8],
    phase: Duration,
    (score, pcore): (usize, usize),
) -> (CeilingRow, Value) {
    let (s0, p0) = (sdev.stats_full(), pdev.stats_full());
    let done = AtomicBool::new(false);
    let label = format!("ceiling l2fwd {SMALL} B");
    let prog = Progress::default();
    let (fwd, dropped, sent, back, resets, secs) = std::thread::scope(|s| {
        let f = s.spawn(|| forward(sdev, score, &done, phase + GRACE));
        let p = s.spawn(|| ping(pdev, pcore, frame, phase, &prog));
        progress(&label, phase, &prog, || p.is_finished());
        let (sent, back, resets, secs) = p.join().unwrap_or_default();
        done.store(true, Relaxed);
        let (fwd, dropped) = f.join().unwrap_or_default();
        (fwd, dropped, sent, back, resets, secs)
    });
    // sent - returned = frames still in flight at the end plus frames lost on the way.
    let d = json!({
        "peer_sent": sent, "peer_returned": back, "peer_window_resets": resets,
        "stack_forwarded": fwd, "stack_dropped": dropped,
        "stack": counts(&s0, &sdev.stats_full()), "peer": counts(&p0, &pdev.stats_full()),
    });
    (CeilingRow::new("l2fwd", SMALL, back, sent, secs), d)
}

/// The progress line while `finished` is false (bounded by the phase plus [`GRACE`]).
/// `p.ok` counts frames (received, sent, or returned: what the phase measures).
fn progress(label: &str, phase: Duration, p: &Progress, finished: impl Fn() -> bool) {
    let start = Instant::now();
    while !finished() && start.elapsed() < phase + GRACE {
        std::thread::sleep(Duration::from_millis(200));
        crate::client::progress_line(label, start.elapsed(), phase, p, false);
    }
    crate::client::progress_line(label, start.elapsed(), phase, p, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_asked_length_and_parse() {
        let (a, b) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
        for len in [SMALL, LARGE] {
            let f = tcp_frame(a, b, false, len);
            assert_eq!(f.len(), len);
            let t = wire::parse_tcp_frame(&f).expect("valid checksums");
            assert_eq!((t.tcp.src_port, t.tcp.dst_port), (PEER_PORT, STACK_PORT));
            assert_eq!(t.tcp.payload.len(), len - 54);
        }
    }

    #[test]
    fn swap_reverses_the_frame_and_keeps_checksums_valid() {
        let (a, b) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
        let mut f = tcp_frame(a, b, false, SMALL);
        assert!(swap_in_place(&mut f));
        assert_eq!(f, tcp_frame(b, a, true, SMALL));
        assert!(wire::parse_tcp_frame(&f).is_ok());
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!swap_in_place(&mut arp));
        assert!(!swap_in_place(&mut f[..37]));
    }

    #[test]
    fn row_rates() {
        let r = CeilingRow::new("tx", 1514, 1_000_000, 1_000_100, 2.0);
        assert_eq!((r.mpps, r.missing), (0.5, 100));
        assert_eq!(CeilingRow::new("tx", 64, 10, 5, 1.0).missing, 0);
        assert!((r.gbps - 6.056).abs() < 1e-9, "{}", r.gbps);
    }
}
