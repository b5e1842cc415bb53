//! The sender's path MTU: lowered by ICMP "fragmentation needed" / "packet too big" (RFC 1191
//! §6.2, RFC 8201 §5.4) and by black-hole detection (RFC 4821's fallback, Linux
//! `tcp_mtu_probing`). Segments are cut from the byte buffer when sent, so a smaller MSS
//! resizes every queued segment by itself; what was in flight at the old size is sent again
//! (Linux `tcp_simple_retransmit`).
//!
//! With `tcp_mtu_probing` on, the MSS is also probed upward (RFC 4821 §7, Linux
//! `tcp_mtu_probe`): once the connection is in steady state (no recovery, no timeout, cwnd
//! of at least 11 segments, enough data queued), one segment of the size halfway between
//! the current MSS and the upper bound (the path's MSS, lowered by failed probes) goes out;
//! acknowledged, it becomes the MSS; lost (three duplicate ACKs at it, or a timeout), it
//! becomes the upper bound, without a congestion response. Probing stops when the bounds
//! are closer than `tcp_probe_threshold` (8 bytes).

use super::{Negotiated, Sender};
use crate::tcp::cc::CongestionControl;
use crate::tcp::icmp::{IPV6_MIN_PMTU, MIN_PMTU, MIN_SND_MSS};
use crate::wire::SeqNum;

/// IPv4 + TCP headers without options (Linux `__tcp_mtu_to_mss`).
pub(super) const HEADERS_V4: u8 = 40;
/// IPv6 + TCP headers without options (Linux `tcp_v6_mtu_reduced`: MSS = PMTU - 60).
const HEADERS_V6: u8 = 60;
/// Linux `tcp_probe_threshold`: probing stops when the search interval is below this.
const PROBE_THRESHOLD: u16 = 8;
/// Linux's default `tcp_reordering` (3) + 1: data beyond a probe needed to detect its loss
/// by duplicate ACKs, in segments.
const PROBE_TAIL_SEGMENTS: usize = 4;
/// Linux `tcp_mtu_probe`: no probe while cwnd is below this many segments.
const PROBE_MIN_CWND_SEGMENTS: u32 = 11;

impl Sender {
    /// The path MTU in use.
    pub fn pmtu(&self) -> u16 {
        self.pmtu
    }

    /// A sender of an IPv6 connection: the MSS from a path MTU is 60 bytes less (IPv6's
    /// 40-byte header), and a Packet Too Big never takes the path MTU below 1280. The path
    /// MTU starts at the link's either way (`tcp_mss` + 40).
    pub fn over_ipv6(mut self, ipv6: bool, nego: Negotiated) -> Sender {
        if ipv6 {
            self.headers = HEADERS_V6;
            self.sync_mss(nego);
        }
        self
    }

    /// The data bytes per segment now (the MSS less the timestamp option).
    pub fn mss(&self) -> u16 {
        self.mss
    }

    /// A "fragmentation needed" / "packet too big" reporting `mtu` (0: not given). As Linux
    /// (`__ip_rt_update_pmtu`, `tcp_v4_mtu_reduced`): below `MIN_PMTU` it counts as
    /// `min(PMTU, MIN_PMTU)`; the path MTU only goes down. Returns the new path MTU when it
    /// went down; then the MSS follows and what is in flight is sent again at once.
    ///
    /// Over IPv6 ([`Sender::over_ipv6`]) an MTU below [`IPV6_MIN_PMTU`] is discarded instead
    /// (RFC 8201 §4, Linux `tcp_v6_err`: `if (mtu < IPV6_MIN_MTU) goto out`).
    pub fn on_packet_too_big(&mut self, mtu: u16, nego: Negotiated) -> Option<u16> {
        if self.headers == HEADERS_V6 && mtu < IPV6_MIN_PMTU {
            return None;
        }
        let mtu = if mtu < MIN_PMTU {
            self.pmtu.min(MIN_PMTU)
        } else {
            mtu
        };
        if mtu >= self.pmtu {
            return None;
        }
        self.pmtu = mtu;
        self.sync_mss(nego);
        self.simple_retransmit();
        Some(mtu)
    }

    /// Black-hole detection (Linux `tcp_mtu_probing` from `tcp_write_timeout`): the first
    /// time, cap the data MSS at `base_mss`; after that halve the cap, never below
    /// [`MIN_SND_MSS`]. Returns whether the MSS went down.
    pub fn on_black_hole(&mut self, base_mss: u16, nego: Negotiated) -> bool {
        let before = self.mss;
        if self.probe_mss == 0 {
            self.start_probing(base_mss, nego);
        } else {
            self.probe_mss = (self.probe_mss / 2).min(base_mss).max(MIN_SND_MSS);
            self.sync_mss(nego);
        }
        self.mss < before
    }

    /// `tcp_mtu_probing` on: the data MSS is capped at `base_mss` (Linux `search_low`).
    pub(in crate::tcp::conn) fn start_probing(&mut self, base_mss: u16, nego: Negotiated) {
        self.probe_mss = base_mss.max(MIN_SND_MSS);
        self.sync_mss(nego);
    }

    /// Linux `tcp_sync_mss`: the MSS from the path MTU (headers off, clamped by what the
    /// handshake agreed, at least [`MIN_SND_MSS`]), less the options, capped by black-hole
    /// detection. cwnd and ssthresh keep their count of segments (Linux counts them in
    /// segments: "units changed and effective cwnd/ssthresh really reduced now").
    fn sync_mss(&mut self, nego: Negotiated) {
        let opts = if nego.timestamps { 12 } else { 0 };
        let from_path = self
            .pmtu
            .saturating_sub(u16::from(self.headers))
            .min(nego.mss)
            .max(MIN_SND_MSS);
        let mut mss = Self::effective_mss(nego).min(from_path.saturating_sub(opts).max(8));
        if self.probe_mss != 0 {
            // Linux tcp_sync_mss: search_high never above the path's.
            self.probe_high = match self.probe_high {
                0 => mss,
                h => h.min(mss),
            };
            mss = mss.min(self.probe_mss);
        }
        if mss != self.mss {
            self.cc.set_mss(mss);
            self.mss = mss;
        }
    }

    /// The length of a path MTU probe to send now at SND.NXT, if one is due (see the module
    /// docs). `budget` is what cwnd allows, `usable` the peer's window at SND.NXT, `unsent`
    /// the queued bytes from SND.NXT.
    pub(super) fn mtu_probe_len(
        &self,
        budget: u32,
        usable: usize,
        unsent: usize,
        resend: bool,
    ) -> Option<usize> {
        if self.probe_mss == 0
            || self.probe_len != 0
            || resend
            || self.recovery.is_some()
            || self.dupacks > 0
            || self.rto_count > 0
        {
            return None;
        }
        let mss = self.mss as usize;
        let high = self.probe_high;
        if high < self.mss + PROBE_THRESHOLD {
            return None;
        }
        let size = ((self.mss as usize) + high as usize) / 2;
        let needed = size + PROBE_TAIL_SEGMENTS * mss;
        let cwnd = self.cc.cwnd();
        if cwnd < PROBE_MIN_CWND_SEGMENTS * self.mss as u32
            || unsent < needed
            || usable < needed
            || (budget as usize) < size + mss
        {
            return None;
        }
        Some(size)
    }

    /// A retransmission overlapping the probe in flight (after an RTO, a loss before it or
    /// a lower path MTU) abandons it: an ACK can no longer tell whether the probe's size
    /// got through.
    pub(super) fn on_sent_probe(&mut self, tx: &super::Tx) {
        if self.probe_len == 0 || !tx.seq.lt(self.max) {
            return;
        }
        let probe_end = self.probe_seq + self.probe_len as u32;
        if tx.seq.lt(probe_end) && (tx.seq + tx.len as u32).gt(self.probe_seq) {
            self.probe_len = 0;
        }
    }

    /// A cumulative ACK up to `ack`: a probe it covers succeeded (Linux
    /// `tcp_mtup_probe_success`): its size becomes the MSS, cwnd keeps its bytes.
    pub(super) fn on_ack_probe(&mut self, ack: SeqNum) {
        if self.probe_len == 0 || !(self.probe_seq + self.probe_len as u32).le(ack) {
            return;
        }
        let size = std::mem::take(&mut self.probe_len);
        if size > self.mss {
            self.probe_mss = size;
            self.mss = size;
            self.cc.set_mss_keep_bytes(size);
        }
    }

    /// Three duplicate ACKs: if they are for the probe (SND.UNA at its start), the probe was
    /// too big (Linux `tcp_fastretrans_alert`: "MTU probe failure: don't reduce cwnd"): the
    /// bound comes down and what is in flight is sent again at the MSS. Returns whether it
    /// was the probe.
    pub(super) fn probe_lost(&mut self) -> bool {
        if self.probe_len == 0 || self.probe_seq != self.una {
            return false;
        }
        self.probe_failed();
        self.simple_retransmit();
        true
    }

    /// Linux `tcp_mtup_probe_failed`: the search's upper bound drops below the probe's size
    /// (no-op without a probe in flight).
    pub(super) fn probe_failed(&mut self) {
        let size = std::mem::take(&mut self.probe_len);
        if size != 0 {
            self.probe_high = size.saturating_sub(1).max(self.mss);
        }
    }

    /// Linux `tcp_simple_retransmit`: the segments in flight were sent at the old size and
    /// were dropped; go back to SND.UNA and send them again now at the new size (go-back-N
    /// skips what the peer SACKed), without a congestion response. As Linux's Loss state
    /// (`high_seq = snd_nxt`), no fast recovery starts for what was sent before.
    fn simple_retransmit(&mut self) {
        if !self.in_flight() {
            return;
        }
        self.recover = self.max;
        self.recovery = None;
        self.dupacks = 0;
        self.nxt = self.una;
        // Karn (RFC 6298 §3): the timed segment is sent again, no sample from it.
        self.timing = None;
        self.rtx_head = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::bufpool::BufPool;
    use crate::tcp::cc::CongestionControl;
    use crate::tcp::conn::sender::TxKind;
    use crate::tcp::conn::Limits;
    use crate::tcp::TcpConfig;
    use crate::time::Instant;
    use crate::wire::SeqNum;

    fn nego(ts: bool) -> Negotiated {
        Negotiated {
            mss: 1460,
            timestamps: ts,
            ..Default::default()
        }
    }

    fn sender(cfg: &TcpConfig, ts: bool) -> Sender {
        let mut s = Sender::new(SeqNum(0), nego(ts), 1 << 20, &Limits::new(cfg));
        s.set_window(1 << 20, SeqNum(0), SeqNum(1));
        s
    }

    /// RFC 1191 §4 next-hop MTU 1280: MSS 1280 - 40 - 12 = 1228 with timestamps (Linux
    /// `tcp_mtu_to_mss`); larger or equal MTUs change nothing (the PMTU only decreases).
    #[test]
    fn frag_needed_lowers_mss_only_downward() {
        let cfg = TcpConfig::default();
        let mut s = sender(&cfg, true);
        assert_eq!((s.pmtu(), s.mss()), (1500, 1448));
        assert_eq!(s.on_packet_too_big(1500, nego(true)), None);
        assert_eq!(s.on_packet_too_big(9000, nego(true)), None);
        assert_eq!(s.on_packet_too_big(1280, nego(true)), Some(1280));
        assert_eq!((s.pmtu(), s.mss()), (1280, 1228));
        assert_eq!(s.on_packet_too_big(1400, nego(true)), None, "never back up");
        // Without timestamps the MSS is the MTU less 40.
        let mut s = sender(&cfg, false);
        s.on_packet_too_big(1280, nego(false));
        assert_eq!(s.mss(), 1240);
    }

    /// Linux `ip_rt_min_pmtu` = 552: a reported MTU of 0 (pre-RFC 1191 router, RFC 1191 §5)
    /// or 68 (the IPv4 minimum, RFC 791) gives PMTU 552 and MSS 552 - 40 - 12 = 500.
    #[test]
    fn tiny_or_missing_mtu_floors_at_min_pmtu() {
        for reported in [0u16, 68, 551] {
            let mut s = sender(&TcpConfig::default(), true);
            assert_eq!(s.on_packet_too_big(reported, nego(true)), Some(552));
            assert_eq!(s.mss(), 500);
            assert_eq!(s.on_packet_too_big(0, nego(true)), None);
        }
    }

    /// `tcp_simple_retransmit`: the flight goes out again from SND.UNA at the new size, the
    /// first segment at once; cwnd keeps its count of segments.
    #[test]
    fn in_flight_is_resent_at_the_new_size() {
        let mut s = sender(&TcpConfig::default(), false);
        let mut p = BufPool::new();
        s.write(&[7u8; 4 * 1460], &mut p);
        let mut sent = Vec::new();
        while let Some(tx) = s.next_tx(true) {
            s.on_sent(Instant::ZERO, &tx);
            sent.push((tx.seq.0, tx.len));
        }
        assert_eq!(
            sent,
            vec![(1, 1460), (1461, 1460), (2921, 1460), (4381, 1460)]
        );
        let cwnd_segments = s.cc.cwnd() / 1460;
        assert_eq!(s.on_packet_too_big(1280, nego(false)), Some(1280));
        assert_eq!(s.cc.cwnd() / 1240, cwnd_segments);
        let tx = s.next_tx(true).unwrap();
        assert_eq!((tx.seq.0, tx.len, tx.kind), (1, 1240, TxKind::Head));
        s.on_sent(Instant::ZERO, &tx);
        let mut again = Vec::new();
        while let Some(tx) = s.next_tx(true) {
            s.on_sent(Instant::ZERO, &tx);
            again.push((tx.seq.0, tx.len));
        }
        assert_eq!(
            again,
            vec![(1241, 1240), (2481, 1240), (3721, 1240), (4961, 880)]
        );
    }

    /// Linux `tcp_mtu_probing`: the first black hole caps the data MSS at `tcp_base_mss`
    /// (1024), each further one halves it, never below `tcp_min_snd_mss` (48).
    #[test]
    fn black_hole_steps_down_from_base_mss() {
        let cfg = TcpConfig::default();
        let mut s = sender(&cfg, true);
        let mut seen = Vec::new();
        for _ in 0..7 {
            s.on_black_hole(1024, nego(true));
            seen.push(s.mss());
        }
        assert_eq!(seen, vec![1024, 512, 256, 128, 64, 48, 48]);
        // Mode 2: the cap applies from the start.
        let cfg = TcpConfig {
            mtu_probing: 2,
            ..TcpConfig::default()
        };
        assert_eq!(sender(&cfg, true).mss(), 1024);
    }

    /// A peer ACK for `sender`'s tests: cumulative `ack`, window 65535, no data.
    fn ack_seg(ack: u32) -> crate::wire::TcpRepr<'static> {
        crate::wire::TcpRepr {
            src_port: 2,
            dst_port: 1,
            seq: SeqNum(0),
            ack: SeqNum(ack),
            flags: crate::wire::TcpFlags::ACK,
            window: 0xffff,
            urgent: 0,
            options: Default::default(),
            payload: &[],
        }
    }

    fn send_all(s: &mut Sender) -> Vec<(u32, usize)> {
        let mut v = Vec::new();
        while let Some(tx) = s.next_tx(true) {
            s.on_sent(Instant::ZERO, &tx);
            v.push((tx.seq.0, tx.len));
        }
        v
    }

    /// `tcp_mtu_probing = 2` without timestamps: MSS 1024 (`tcp_base_mss`), path MSS 1460;
    /// 64 KiB queued, the initial window (10 x 1024) sent and acknowledged, so cwnd is 12
    /// segments (slow start), enough for a probe (Linux: cwnd >= 11).
    fn probing_sender(p: &mut BufPool) -> Sender {
        let cfg = TcpConfig {
            mtu_probing: 2,
            congestion_control: crate::tcp::cc::CongestionAlgo::Reno,
            ..TcpConfig::default()
        };
        let mut s = Sender::new(SeqNum(0), nego(false), 1 << 20, &Limits::new(&cfg));
        s.set_window(0xffff, SeqNum(0), SeqNum(1));
        s.write(&[3u8; 65_536], p);
        let first = send_all(&mut s);
        assert_eq!(first.len(), 10);
        assert!(first.iter().all(|&(_, l)| l == 1024), "{first:?}");
        s.process_ack(Instant::ZERO, &ack_seg(10_241), &[], None, p);
        assert_eq!(s.cc.cwnd(), 12 * 1024);
        s
    }

    /// RFC 4821 §7 / Linux tcp_mtu_probe: one probe of (1024 + 1460) / 2 = 1242 bytes goes
    /// out first, then MSS-sized segments; acknowledged, it becomes the MSS (cwnd keeps its
    /// bytes, tcp_mtup_probe_success) and the next probe is (1242 + 1460) / 2 = 1351.
    #[test]
    fn upward_probe_raises_mss_when_acknowledged() {
        let mut p = BufPool::new();
        let mut s = probing_sender(&mut p);
        let out = send_all(&mut s);
        assert_eq!(out[0], (10_241, 1242));
        assert!(out[1..].iter().all(|&(_, l)| l == 1024), "{out:?}");
        let cwnd = s.cc.cwnd();
        s.process_ack(Instant::ZERO, &ack_seg(10_241 + 1242), &[], None, &mut p);
        assert_eq!(s.mss(), 1242);
        assert!(s.cc.cwnd() >= cwnd, "no reduction");
        // Everything acknowledged: the next round starts with the next probe.
        let max = s.max().0;
        s.process_ack(Instant::ZERO, &ack_seg(max), &[], None, &mut p);
        assert_eq!(send_all(&mut s)[0], (max, 1351));
    }

    /// The probe is lost (three duplicate ACKs at its first byte): no congestion response
    /// (Linux tcp_fastretrans_alert, "MTU probe failure: don't reduce cwnd"), the upper
    /// bound drops to 1241 and what was in flight goes again at 1024; the next probe is
    /// (1024 + 1241) / 2 = 1132.
    #[test]
    fn lost_probe_lowers_the_upper_bound_without_congestion_response() {
        let mut p = BufPool::new();
        let mut s = probing_sender(&mut p);
        let out = send_all(&mut s);
        assert_eq!(out[0], (10_241, 1242));
        let cwnd = s.cc.cwnd();
        for _ in 0..3 {
            s.process_ack(Instant::ZERO, &ack_seg(10_241), &[], None, &mut p);
        }
        assert_eq!(s.cc.cwnd(), cwnd, "cwnd untouched");
        assert!(s.recovery.is_none(), "no fast recovery for a probe");
        assert_eq!(s.probe_high, 1241);
        let again = send_all(&mut s);
        assert_eq!(again[0], (10_241, 1024));
        let max = s.max().0;
        s.process_ack(Instant::ZERO, &ack_seg(max), &[], None, &mut p);
        assert_eq!(send_all(&mut s)[0], (max, 1132));
    }

    /// A timeout with the probe unacknowledged counts as its loss too.
    #[test]
    fn probe_unacknowledged_at_a_timeout_failed() {
        let mut p = BufPool::new();
        let mut s = probing_sender(&mut p);
        assert_eq!(send_all(&mut s)[0], (10_241, 1242));
        s.on_rto(Instant::from_secs(1));
        assert_eq!((s.probe_high, s.probe_len, s.mss()), (1241, 0, 1024));
    }

    /// A "fragmentation needed" while the probe is in flight: the flight is resent at the
    /// path's new size, the probe with it, and its ACK then proves nothing: the MSS stays
    /// the path's (1240 for MTU 1280 without timestamps).
    #[test]
    fn probe_resent_after_frag_needed_is_abandoned() {
        let mut p = BufPool::new();
        let mut s = probing_sender(&mut p);
        assert_eq!(send_all(&mut s)[0], (10_241, 1242));
        assert_eq!(s.on_packet_too_big(1280, nego(false)), Some(1280));
        let again = send_all(&mut s);
        assert_eq!(again[0], (10_241, 1024));
        let max = s.max().0;
        s.process_ack(Instant::ZERO, &ack_seg(max), &[], None, &mut p);
        assert_eq!((s.mss(), s.probe_len), (1024, 0));
        assert_eq!(s.probe_high, 1240, "search_high follows the path MTU down");
    }
}
