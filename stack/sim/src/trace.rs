//! A bounded ring of what happened on the simulated wire, printed tcpdump-style when a test
//! fails (see `Sim`'s `Drop`).

use std::collections::VecDeque;
use std::fmt;

use xdptcp_core::time::Instant;
use xdptcp_core::wire::{self, TcpFlags, TcpRepr};

/// Which node something happened at or came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    fn arrow(self) -> &'static str {
        match self {
            Side::Client => "C>S",
            Side::Server => "S>C",
        }
    }
}

/// The header fields of a segment worth printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub len: u32,
}

impl Summary {
    pub fn of(seg: &TcpRepr<'_>) -> Summary {
        Summary {
            src_port: seg.src_port,
            dst_port: seg.dst_port,
            flags: seg.flags.0,
            seq: seg.seq.0,
            ack: seg.ack.0,
            window: seg.window,
            len: seg.payload.len() as u32,
        }
    }

    fn flag_str(&self) -> String {
        let f = TcpFlags(self.flags);
        let mut s = String::new();
        for (on, c) in [
            (f.syn(), 'S'),
            (f.fin(), 'F'),
            (f.rst(), 'R'),
            (f.psh(), 'P'),
            (f.ack(), '.'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}>{} [{}] seq {} ack {} win {} len {}",
            self.src_port,
            self.dst_port,
            self.flag_str(),
            self.seq,
            self.ack,
            self.window,
            self.len
        )
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// Put on the link; flags say what the link did to it.
    Sent {
        duplicated: bool,
        corrupted: bool,
        reordered: bool,
    },
    Lost,
    QueueFull,
    /// Parsed and handed to the receiving endpoint.
    Delivered,
    /// The receiver's parser rejected it.
    Rejected(wire::Error),
    /// A node's timer fired.
    Timeout,
    /// A note from the scenario (an application call).
    App(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub at: Instant,
    /// Sender for packets, the node for timeouts and app notes.
    pub side: Side,
    pub what: What,
    pub seg: Option<Summary>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.at.as_micros();
        write!(f, "{:>6}.{:06} ", t / 1_000_000, t % 1_000_000)?;
        match self.what {
            What::Timeout => return write!(f, "{:?} timeout", self.side),
            What::App(s) => return write!(f, "{:?} app: {s}", self.side),
            _ => {}
        }
        let dir = if self.what == What::Delivered || matches!(self.what, What::Rejected(_)) {
            "  arrive "
        } else {
            ""
        };
        write!(f, "{}{dir} ", self.side.arrow())?;
        if let Some(s) = self.seg {
            write!(f, "{s}")?;
        }
        match self.what {
            What::Sent {
                duplicated,
                corrupted,
                reordered,
            } => {
                for (on, s) in [
                    (duplicated, " DUP"),
                    (corrupted, " CORRUPT"),
                    (reordered, " DELAYED"),
                ] {
                    if on {
                        f.write_str(s)?;
                    }
                }
                Ok(())
            }
            What::Lost => f.write_str("  LOST"),
            What::QueueFull => f.write_str("  QUEUE-FULL"),
            What::Rejected(e) => write!(f, "  REJECTED: {e}"),
            _ => Ok(()),
        }
    }
}

/// The last `cap` entries. Memory: `cap` entries of ~48 bytes.
#[derive(Debug)]
pub struct Trace {
    ring: VecDeque<Entry>,
    cap: usize,
    dropped: u64,
}

impl Trace {
    pub fn new(cap: usize) -> Self {
        Trace {
            ring: VecDeque::with_capacity(cap.min(4096)),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    pub fn push(&mut self, e: Entry) {
        if self.ring.len() == self.cap {
            self.ring.pop_front();
            self.dropped += 1;
        }
        self.ring.push_back(e);
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.ring.iter()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dropped > 0 {
            writeln!(f, "  ... {} earlier entries not kept", self.dropped)?;
        }
        for e in &self.ring {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_entries() {
        let mut t = Trace::new(2);
        for i in 0..3 {
            t.push(Entry {
                at: Instant::from_millis(i),
                side: Side::Client,
                what: What::Timeout,
                seg: None,
            });
        }
        let s = t.to_string();
        assert!(s.starts_with("  ... 1 earlier entries not kept\n"), "{s}");
        assert!(s.contains("0.001000 Client timeout"), "{s}");
        assert!(s.contains("0.002000 Client timeout"), "{s}");
        assert!(!s.contains("0.000000"), "{s}");
    }

    #[test]
    fn summary_prints_like_tcpdump() {
        let s = Summary {
            src_port: 40000,
            dst_port: 80,
            flags: 0x12,
            seq: 1,
            ack: 2,
            window: 3,
            len: 0,
        };
        assert_eq!(s.to_string(), "40000>80 [S.] seq 1 ack 2 win 3 len 0");
    }
}
