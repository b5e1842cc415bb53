//! Data-transfer counters of an endpoint, summed over its connections: what a bulk flow's
//! segments and ACKs look like and what stopped each transmit round. Counted by observing
//! the segments that pass through the endpoint and asking the connection afterwards
//! (`Connection::tx_limit`): nothing is stored per connection.

use crate::tcp::conn::TxLimit;
use crate::wire::{SeqNum, TcpRepr};

/// Flow counters (Linux MIB names in brackets where one exists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Segments received with payload, and their payload bytes.
    pub data_segs_in: u64,
    /// Payload bytes of those segments.
    pub data_bytes_in: u64,
    /// Segments received without payload, SYN, FIN or RST: pure ACKs (and window updates).
    pub pure_acks_in: u64,
    /// Segments sent with payload (`TcpOutSegs` less ACKs), and their payload bytes.
    pub data_segs_out: u64,
    /// Payload bytes of those segments.
    pub data_bytes_out: u64,
    /// Data segments sent below SND.MAX: retransmissions of any kind (`RetransSegs`).
    pub retrans_segs: u64,
    /// Segments sent without payload, SYN, FIN or RST: pure ACKs.
    pub pure_acks_out: u64,
    /// Transmit rounds of a connection with data queued or in flight, by what ended them
    /// (see `TxLimit`): the application wrote nothing more; all of `tcp_wmem` was in
    /// flight; the peer's window; the congestion window; Nagle / sender SWS avoidance.
    pub tx_app_limited: u64,
    /// Rounds ended with all of `tcp_wmem` in flight.
    pub tx_sndbuf_limited: u64,
    /// Rounds ended by the peer's window.
    pub tx_rwnd_limited: u64,
    /// Rounds ended by the congestion window.
    pub tx_cwnd_limited: u64,
    /// Rounds ended by Nagle or sender SWS avoidance holding a small segment.
    pub tx_small_held: u64,
}

/// A segment with no payload and no SYN, FIN or RST.
fn pure_ack(seg: &TcpRepr<'_>) -> bool {
    let f = seg.flags;
    seg.payload.is_empty() && f.ack() && !f.syn() && !f.fin() && !f.rst()
}

impl FlowStats {
    /// A segment arrived for a connection.
    pub fn on_input(&mut self, seg: &TcpRepr<'_>) {
        if !seg.payload.is_empty() {
            self.data_segs_in += 1;
            self.data_bytes_in += seg.payload.len() as u64;
        } else if pure_ack(seg) {
            self.pure_acks_in += 1;
        }
    }

    /// A connection emitted `seg`; `snd_max` is its SND.MAX before this transmit round.
    pub fn on_output(&mut self, seg: &TcpRepr<'_>, snd_max: Option<SeqNum>) {
        if !seg.payload.is_empty() {
            self.data_segs_out += 1;
            self.data_bytes_out += seg.payload.len() as u64;
            if snd_max.is_some_and(|m| seg.seq.lt(m)) {
                self.retrans_segs += 1;
            }
        } else if pure_ack(seg) {
            self.pure_acks_out += 1;
        }
    }

    /// A transmit round ended with `limit`.
    pub fn on_round(&mut self, limit: Option<TxLimit>) {
        match limit {
            None => {}
            Some(TxLimit::App) => self.tx_app_limited += 1,
            Some(TxLimit::SendBuffer) => self.tx_sndbuf_limited += 1,
            Some(TxLimit::PeerWindow) => self.tx_rwnd_limited += 1,
            Some(TxLimit::Cwnd) => self.tx_cwnd_limited += 1,
            Some(TxLimit::Small) => self.tx_small_held += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TcpFlags, TcpOptions};

    fn seg(seq: u32, flags: TcpFlags, payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(seq),
            ack: SeqNum(0),
            flags,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
            payload,
        }
    }

    #[test]
    fn classifies_segments_and_rounds() {
        let mut f = FlowStats::default();
        f.on_input(&seg(1, TcpFlags::ACK, b"abc"));
        f.on_input(&seg(1, TcpFlags::ACK, b""));
        f.on_input(&seg(1, TcpFlags::ACK | TcpFlags::FIN, b""));
        assert_eq!((f.data_segs_in, f.data_bytes_in, f.pure_acks_in), (1, 3, 1));
        // Below SND.MAX = 100: a retransmission; at it: new data.
        f.on_output(&seg(90, TcpFlags::ACK, b"0123456789"), Some(SeqNum(100)));
        f.on_output(&seg(100, TcpFlags::ACK, b"01"), Some(SeqNum(100)));
        f.on_output(&seg(112, TcpFlags::ACK, b""), Some(SeqNum(112)));
        f.on_output(&seg(112, TcpFlags::RST, b""), None);
        assert_eq!((f.data_segs_out, f.data_bytes_out), (2, 12));
        assert_eq!((f.retrans_segs, f.pure_acks_out), (1, 1));
        for l in [
            TxLimit::Cwnd,
            TxLimit::Cwnd,
            TxLimit::PeerWindow,
            TxLimit::SendBuffer,
        ] {
            f.on_round(Some(l));
        }
        f.on_round(None);
        assert_eq!(
            (f.tx_cwnd_limited, f.tx_rwnd_limited, f.tx_sndbuf_limited),
            (2, 1, 1)
        );
        assert_eq!((f.tx_app_limited, f.tx_small_held), (0, 0));
    }
}
