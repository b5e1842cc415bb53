//! Hand-off of misdirected frames between workers.
//!
//! A segment can arrive on a queue whose worker does not own its flow (on veth the queue is
//! the Linux peer's per-socket hash, which changes after an RTO; on a NIC, RSS with an
//! unknown key). The receiving worker copies the frame into a buffer of a bounded pool kept
//! per ordered worker pair and sends it to the owner over a bounded crossbeam channel; the
//! owner processes it in its loop as if it had received it, and sends the buffer back over
//! a return channel. Nothing is allocated per packet: every buffer is allocated once, in
//! [`mesh`].
//!
//! Bound: `pool` buffers of `frame_len` bytes per ordered pair (N·(N−1)·pool·frame_len bytes
//! in all; 256 × 2048 B = 512 KiB per pair by default). A frame finding no free buffer (the
//! owner is behind) is dropped and counted: TCP retransmits it.

use crossbeam::channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};

/// Sizes of the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffConfig {
    /// Buffers (and channel slots) per ordered worker pair.
    pub pool: usize,
    /// Longest frame handed off (longer ones are dropped and counted).
    pub frame_len: usize,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        HandoffConfig {
            pool: 256,
            frame_len: 2048,
        }
    }
}

/// Why a frame was not handed off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffDrop {
    /// No free buffer for this pair (the owner has not returned them yet), or channel full.
    Full,
    /// Longer than `frame_len`.
    TooLong,
    /// The owner has stopped, or the target is this worker or out of range.
    NoOwner,
}

/// Hand-off counters of one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoffStats {
    /// Frames copied to another worker.
    pub sent: u64,
    /// Frames other workers copied to this one.
    pub received: u64,
    /// Dropped by the sender: no free buffer / channel full.
    pub dropped_full: u64,
    /// Dropped by the sender: too long, or the owner is gone.
    pub dropped_other: u64,
}

impl HandoffStats {
    /// All frames dropped by the sender, for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_other
    }
}

struct Buf {
    len: usize,
    data: Box<[u8]>,
}

/// This worker's sending side toward one peer.
struct OutLink {
    tx: Sender<Buf>,
    /// Buffers back from the peer (it returns them after processing).
    back: Receiver<Buf>,
    free: Vec<Buf>,
}

/// This worker's receiving side from one peer.
struct InLink {
    rx: Receiver<Buf>,
    back: Sender<Buf>,
}

/// One worker's ends of the hand-off mesh. See the module docs.
pub struct Handoff {
    me: usize,
    frame_len: usize,
    out: Vec<Option<OutLink>>,
    inc: Vec<Option<InLink>>,
    /// Where the next `recv` starts (round robin over peers).
    next_in: usize,
    stats: HandoffStats,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("me", &self.me)
            .field("workers", &self.out.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The full mesh for `n` workers: element `i` belongs to worker `i`.
pub fn mesh(n: usize, cfg: HandoffConfig) -> Vec<Handoff> {
    let pool = cfg.pool.max(1);
    let mut hs: Vec<Handoff> = (0..n)
        .map(|me| Handoff {
            me,
            frame_len: cfg.frame_len,
            out: (0..n).map(|_| None).collect(),
            inc: (0..n).map(|_| None).collect(),
            next_in: 0,
            stats: HandoffStats::default(),
        })
        .collect();
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            let (tx, rx) = bounded(pool);
            let (back_tx, back_rx) = bounded(pool);
            let free = (0..pool)
                .map(|_| Buf {
                    len: 0,
                    data: vec![0u8; cfg.frame_len].into_boxed_slice(),
                })
                .collect();
            hs[from].out[to] = Some(OutLink {
                tx,
                back: back_rx,
                free,
            });
            hs[to].inc[from] = Some(InLink { rx, back: back_tx });
        }
    }
    hs
}

impl Handoff {
    /// This worker's index.
    pub fn index(&self) -> usize {
        self.me
    }

    /// This worker's hand-off counters.
    pub fn stats(&self) -> &HandoffStats {
        &self.stats
    }

    /// Copies `frame` to worker `to`'s queue. Counted either way.
    pub fn send(&mut self, to: usize, frame: &[u8]) -> Result<(), HandoffDrop> {
        let r = self.try_send(to, frame);
        match r {
            Ok(()) => self.stats.sent += 1,
            Err(HandoffDrop::Full) => self.stats.dropped_full += 1,
            Err(_) => self.stats.dropped_other += 1,
        }
        r
    }

    fn try_send(&mut self, to: usize, frame: &[u8]) -> Result<(), HandoffDrop> {
        if frame.len() > self.frame_len {
            return Err(HandoffDrop::TooLong);
        }
        let link = self
            .out
            .get_mut(to)
            .and_then(Option::as_mut)
            .ok_or(HandoffDrop::NoOwner)?;
        if link.free.is_empty() {
            // Take back what the owner has returned (at most `pool`: no growth).
            while let Ok(b) = link.back.try_recv() {
                link.free.push(b);
            }
        }
        let mut buf = link.free.pop().ok_or(HandoffDrop::Full)?;
        buf.data[..frame.len()].copy_from_slice(frame);
        buf.len = frame.len();
        match link.tx.try_send(buf) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b)) => {
                link.free.push(b);
                Err(HandoffDrop::Full)
            }
            Err(TrySendError::Disconnected(b)) => {
                link.free.push(b);
                Err(HandoffDrop::NoOwner)
            }
        }
    }

    /// Calls `f` for up to `budget` frames handed to this worker (round robin over the
    /// senders), returning each buffer to its sender. Returns how many.
    pub fn recv<F: FnMut(&[u8])>(&mut self, budget: usize, mut f: F) -> usize {
        let n = self.inc.len();
        let mut done = 0;
        let mut idle_links = 0;
        while done < budget && idle_links < n {
            let i = self.next_in % n.max(1);
            self.next_in = (i + 1) % n.max(1);
            let Some(link) = self.inc[i].as_ref() else {
                idle_links += 1;
                continue;
            };
            match link.rx.try_recv() {
                Ok(buf) => {
                    idle_links = 0;
                    f(&buf.data[..buf.len]);
                    done += 1;
                    // Cannot be full: at most `pool` buffers exist per pair.
                    let _ = link.back.try_send(buf);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => idle_links += 1,
            }
        }
        self.stats.received += done as u64;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_reach_the_owner_and_buffers_come_back() {
        let mut m = mesh(
            3,
            HandoffConfig {
                pool: 2,
                frame_len: 8,
            },
        );
        assert_eq!(m[0].send(2, b"abc"), Ok(()));
        assert_eq!(m[1].send(2, b"defg"), Ok(()));
        assert_eq!(m[0].send(0, b"x"), Err(HandoffDrop::NoOwner));
        assert_eq!(m[0].send(1, b"123456789"), Err(HandoffDrop::TooLong));
        let mut got = Vec::new();
        assert_eq!(m[2].recv(16, |f| got.push(f.to_vec())), 2);
        got.sort();
        assert_eq!(got, vec![b"abc".to_vec(), b"defg".to_vec()]);
        assert_eq!(m[2].stats().received, 2);
        assert_eq!(m[0].stats().sent, 1);
        assert_eq!(m[0].stats().dropped_other, 2);
        assert_eq!(m[1].recv(16, |_| panic!("nothing for 1")), 0);
    }

    #[test]
    fn pool_exhaustion_drops_until_the_owner_returns_buffers() {
        let mut m = mesh(
            2,
            HandoffConfig {
                pool: 2,
                frame_len: 4,
            },
        );
        assert_eq!(m[0].send(1, b"a"), Ok(()));
        assert_eq!(m[0].send(1, b"b"), Ok(()));
        assert_eq!(m[0].send(1, b"c"), Err(HandoffDrop::Full));
        assert_eq!(m[0].stats().dropped_full, 1);
        // Budget 1: one processed, its buffer returned.
        let mut got = Vec::new();
        assert_eq!(m[1].recv(1, |f| got.push(f.to_vec())), 1);
        assert_eq!(m[0].send(1, b"d"), Ok(()));
        assert_eq!(m[0].send(1, b"e"), Err(HandoffDrop::Full));
        assert_eq!(m[1].recv(8, |f| got.push(f.to_vec())), 2);
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]);
        assert_eq!(m[0].stats().sent, 3);
    }

    #[test]
    fn owner_gone_is_counted() {
        let mut m = mesh(2, HandoffConfig::default());
        let one = m.pop();
        drop(one);
        assert_eq!(m[0].send(1, b"a"), Err(HandoffDrop::NoOwner));
        assert_eq!(m[0].stats().dropped(), 1);
    }
}
