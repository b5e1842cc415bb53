//! [`ConnInfo`]: a read-only snapshot of one connection for the application and diagnostics
//! (what Linux reports as `TCP_INFO` / `ss -i`). The endpoint hands out this copy, never the
//! `Connection`, so nothing outside the core can reach into a connection's state machine.

use super::ConnHistory;
use crate::tcp::conn::{ConnError, Connection, Negotiated, State, Timer, TxLimit};
use crate::tcp::tuple::FourTuple;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpRepr};

/// Per-connection counters, kept by the endpoint from the segments it demultiplexes to and
/// emits for the connection and from the connection's SND.UNA / RCV.NXT around each arrival
/// (Linux `tcpi_bytes_acked`, `tcpi_bytes_received`, `tcpi_bytes_sent`, `tcpi_segs_in`,
/// `tcpi_segs_out`, `tcpi_total_retrans`, with Linux's widths: segment counts wrap at 2^32),
/// and when data last went out ([`Activity`]). 40 bytes per connection; no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Sequence space the peer acknowledged (SND.UNA advance) and we received in order
    /// (RCV.NXT advance) after the handshake; a FIN counts one, as in Linux.
    pub bytes_acked: u64,
    /// Sequence space received in order (RCV.NXT advance).
    pub bytes_received: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_out: u64,
    /// Segments received (any kind) and sent (any kind, retransmissions included).
    pub segs_in: u32,
    /// Segments sent (any kind, retransmissions included); wraps at 2^32.
    pub segs_out: u32,
    /// Data segments sent below SND.MAX: retransmissions of any kind.
    pub retrans_segs: u32,
    /// [`Instant::ms_stamp`] of the last segment with data sent (Linux `lsndtime`); in
    /// what was this struct's padding. [`ConnInfo::activity`] shows it.
    pub(super) data_sent: u32,
}

impl ConnCounters {
    pub(super) fn on_input(&mut self) {
        self.segs_in = self.segs_in.wrapping_add(1);
    }

    /// SND.UNA and RCV.NXT of a synchronized connection (not SYN-RECEIVED, not CLOSED), read
    /// before and after a segment is processed.
    pub(super) fn progress(c: &Connection) -> Option<(SeqNum, SeqNum)> {
        match c.state() {
            State::SynSent | State::SynReceived | State::Closed => None,
            _ => Some((c.snd_seq().0, c.rcv_nxt()?)),
        }
    }

    /// Adds what one arrival advanced (`before` / `after` from [`ConnCounters::progress`]).
    /// Returns whether RCV.NXT advanced.
    pub(super) fn on_progress(
        &mut self,
        before: Option<(SeqNum, SeqNum)>,
        after: Option<(SeqNum, SeqNum)>,
    ) -> bool {
        let (Some((una0, rcv0)), Some((una1, rcv1))) = (before, after) else {
            return false;
        };
        if una0.le(una1) {
            self.bytes_acked += (una1 - una0) as u64;
        }
        if rcv0.le(rcv1) {
            self.bytes_received += (rcv1 - rcv0) as u64;
        }
        rcv0.lt(rcv1)
    }

    /// `snd_max`: the connection's SND.MAX before this transmit round.
    pub(super) fn on_output(&mut self, now: Instant, seg: &TcpRepr<'_>, snd_max: Option<SeqNum>) {
        self.segs_out = self.segs_out.wrapping_add(1);
        if !seg.payload.is_empty() {
            // Linux tcp_event_data_sent: any segment with data, retransmissions included.
            self.data_sent = now.ms_stamp();
            self.bytes_out += seg.payload.len() as u64;
            if snd_max.is_some_and(|m| seg.seq.lt(m)) {
                self.retrans_segs = self.retrans_segs.wrapping_add(1);
            }
        }
    }
}

/// When a connection last sent data, received data in order and took an ACK, as
/// [`Instant::ms_stamp`]s (milliseconds of the caller's clock mod 2^32): Linux's `lsndtime`,
/// `icsk_ack.lrcvtime` and `rcv_tstamp`, which `TCP_INFO` reports as `tcpi_last_data_sent`,
/// `tcpi_last_data_recv` and `tcpi_last_ack_recv` and ss as `lastsnd`, `lastrcv`, `lastack`.
/// Each starts at the connection's creation (Linux: at the full socket's). Stored as 3 x 4
/// bytes in what was padding (slot, counters, connection): no per-connection memory added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Activity {
    /// The last segment with data sent, retransmissions included.
    pub data_sent: u32,
    /// The last segment whose data advanced RCV.NXT (in order, or filling a hole).
    pub data_recv: u32,
    /// The last ACK the ACK check took: acceptable (RFC 5961 §5.2) and not older than
    /// SND.UNA, duplicates included; a SYN-ACK completing an active open.
    pub ack_recv: u32,
}

/// Milliseconds since each [`Activity`] stamp: ss's `lastsnd`, `lastrcv`, `lastack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Idle {
    /// Since the last data sent.
    pub lastsnd: u32,
    /// Since the last data received.
    pub lastrcv: u32,
    /// Since the last ACK taken.
    pub lastack: u32,
}

impl Activity {
    /// The milliseconds from each stamp to `now` (wrapping: right for spans under 49.7 days,
    /// as Linux's jiffies-based values).
    pub fn idle(&self, now: Instant) -> Idle {
        Idle {
            lastsnd: now.ms_since_stamp(self.data_sent),
            lastrcv: now.ms_since_stamp(self.data_recv),
            lastack: now.ms_since_stamp(self.ack_recv),
        }
    }
}

/// One connection at one moment. `None` marks what the state does not have (no RTT before
/// ESTABLISHED, no RCV.NXT in SYN-SENT, ...). Built on demand, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The RFC 9293 state.
    pub state: State,
    /// Local and remote address and port.
    pub tuple: FourTuple,
    /// The error the connection ended with.
    pub error: Option<ConnError>,
    /// What the handshake agreed on: MSS, window scale shifts (ours and the peer's), SACK,
    /// timestamps (for SYN-SENT: what we offered).
    pub negotiated: Negotiated,
    /// Our initial send sequence number (RFC 9293 §3.4).
    pub iss: SeqNum,
    /// SND.UNA, SND.NXT, RCV.NXT (RFC 9293 §3.3.1).
    pub snd_una: SeqNum,
    /// SND.NXT: the next sequence number to send.
    pub snd_nxt: SeqNum,
    /// RCV.NXT: the next sequence number expected (`None` in SYN-SENT).
    pub rcv_nxt: Option<SeqNum>,
    /// The peer's window (SND.WND, scaled), in the sending states.
    pub snd_wnd: Option<u32>,
    /// RFC 6298 SRTT and RTTVAR (once sampled) and the current RTO, in the sending states.
    pub srtt: Option<Duration>,
    /// RFC 6298 RTTVAR.
    pub rttvar: Option<Duration>,
    /// The current retransmission timeout (RFC 6298 §2, backed off after timeouts).
    pub rto: Option<Duration>,
    /// Congestion window and slow-start threshold in bytes, in the sending states.
    pub cwnd: Option<u32>,
    /// Slow-start threshold in bytes.
    pub ssthresh: Option<u32>,
    /// The path MTU, in the sending states (Linux `tcpi_pmtu`): the link's, or lower after
    /// ICMP "fragmentation needed" (tcp/icmp.rs).
    pub pmtu: Option<u16>,
    /// Consecutive retransmission timeouts without progress (Linux `tcpi_retransmits`).
    pub retransmits: u32,
    /// Bytes sent and not yet acknowledged (FlightSize).
    pub in_flight: u32,
    /// Received bytes the application has not read.
    pub unread: usize,
    /// Queued bytes not yet sent (Linux `tcpi_notsent_bytes`).
    pub unsent: usize,
    /// Bytes `send` would take now.
    pub send_capacity: usize,
    /// What stopped the last transmit round (`None`: nothing queued or in flight).
    pub tx_limit: Option<TxLimit>,
    /// The earliest armed timer and its deadline.
    pub timer: Option<(Timer, Instant)>,
    /// Segments and bytes in and out over the connection's life.
    pub counters: ConnCounters,
    /// Its last few notable events (history.rs).
    pub history: ConnHistory,
    /// When it last sent data, received data and took an ACK.
    pub activity: Activity,
}

impl ConnInfo {
    /// `data_recv`: the slot's stamp of the last data received ([`Activity::data_recv`]).
    pub(super) fn of(
        c: &Connection,
        counters: ConnCounters,
        data_recv: u32,
        history: ConnHistory,
    ) -> ConnInfo {
        let (snd_una, snd_nxt) = c.snd_seq();
        let rtt = c.rtt();
        let cc = c.congestion_window();
        let timer = Timer::ALL
            .into_iter()
            .filter_map(|t| Some((t, c.timer(t)?)))
            .min_by_key(|&(_, at)| at);
        ConnInfo {
            state: c.state(),
            tuple: c.tuple(),
            error: c.error(),
            negotiated: c.negotiated(),
            iss: c.iss(),
            snd_una,
            snd_nxt,
            rcv_nxt: c.rcv_nxt(),
            snd_wnd: c.snd_wnd(),
            srtt: rtt.and_then(|(srtt, _)| srtt),
            rttvar: c.rttvar(),
            rto: rtt.map(|(_, rto)| rto),
            cwnd: cc.map(|(cwnd, _)| cwnd),
            ssthresh: cc.map(|(_, ssthresh)| ssthresh),
            pmtu: c.pmtu(),
            retransmits: c.rto_count(),
            in_flight: c.flight_size(),
            unread: c.recv_available(),
            unsent: c.unsent(),
            send_capacity: c.send_capacity(),
            tx_limit: c.tx_limit(),
            timer,
            counters,
            history,
            activity: Activity {
                data_sent: counters.data_sent,
                data_recv,
                ack_recv: c.ack_stamp(),
            },
        }
    }
}
