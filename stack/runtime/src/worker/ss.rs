//! The worker's side of `xdptcp ss`: a listing of its listeners, connections and TIME-WAIT
//! records, handed to the control thread in slices of at most [`SS_SLICE`] rows, one slice
//! per loop iteration, so a listing of a million connections never stalls the loop for more
//! than one slice's work (a few µs, measured in docs/benchmarks.md).
//!
//! Protocol: the control thread puts a bounded sender into the [`SsMailbox`] and sets its
//! flag; the worker, which checks the flag once per iteration (one relaxed load when no
//! listing runs), takes it, then sends `Rows` slices and finally `Done`. When the channel is
//! full the slice waits in the worker for the next iteration (the control thread writing to
//! a slow client slows the listing, never the loop); when the receiver is gone the listing
//! ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Mutex;

use crate::tcp::endpoint::Endpoint;
use crate::tcp::tuple::FourTuple;
use crate::tcp::ConnInfo;
use crate::time::{Duration, Instant};

/// Rows per slice (per loop iteration).
pub const SS_SLICE: usize = 64;
/// Slices in flight between a worker and the control thread.
pub const SS_CHANNEL: usize = 8;

/// One row of the listing. Most rows are connections: boxing `Conn` would allocate per row
/// in the worker, so the other variants carry the padding instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsRow {
    /// A listening socket (ss's LISTEN row).
    Listener {
        /// The worker (queue) that owns it.
        worker: usize,
        /// The bound address (0.0.0.0: any).
        addr: std::net::IpAddr,
        /// The bound port.
        port: u16,
        /// Connections in SYN-RECEIVED (half-open) for this listener.
        syn_queue: usize,
        /// Established connections not yet accepted (ss's Recv-Q for a listener).
        accept_queue: usize,
        /// The accept queue's bound (ss's Send-Q for a listener).
        backlog: usize,
    },
    /// A connection with its own state (not a TIME-WAIT record).
    Conn {
        /// The worker (queue) that owns it.
        worker: usize,
        /// Its state, sequence space, queues and timers.
        info: ConnInfo,
        /// `tcp_congestion_control`'s name.
        cc: &'static str,
    },
    /// A TIME-WAIT record (the connection itself is gone).
    TimeWait {
        /// The worker (queue) that owns it.
        worker: usize,
        /// `local` = the stack's side.
        tuple: FourTuple,
        /// Time until the record expires.
        left: Duration,
    },
}

/// What a worker sends.
#[derive(Debug)]
pub enum SsMsg {
    /// The next slice: at most [`SS_SLICE`] rows (empty when a sparse stretch of the table
    /// gave none this iteration; more follow).
    Rows(Vec<SsRow>),
    /// The listing is complete; nothing follows.
    Done,
}

/// Where the control thread leaves a listing request for one worker.
#[derive(Debug, Default)]
pub struct SsMailbox {
    pending: AtomicBool,
    request: Mutex<Option<SyncSender<SsMsg>>>,
}

impl SsMailbox {
    /// Asks for a listing on `tx` (replacing a request not yet taken).
    pub fn request(&self, tx: SyncSender<SsMsg>) {
        *self.request.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.pending.store(true, Ordering::Release);
    }

    /// A request left since the last call (the worker's one check per iteration).
    #[inline]
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    fn take(&self) -> Option<SyncSender<SsMsg>> {
        self.pending.store(false, Ordering::Relaxed);
        self.request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Listeners,
    Conns,
    TimeWait,
    Done,
}

/// A listing in progress in one worker.
#[derive(Debug)]
pub struct SsJob {
    tx: SyncSender<SsMsg>,
    phase: Phase,
    cursor: usize,
    /// A slice the channel had no room for.
    held: Option<SsMsg>,
}

impl SsJob {
    /// Takes a pending request from `mailbox`.
    pub fn take(mailbox: &SsMailbox) -> Option<SsJob> {
        mailbox.take().map(|tx| SsJob {
            tx,
            phase: Phase::Listeners,
            cursor: 0,
            held: None,
        })
    }

    /// One iteration's work: sends a held slice or builds and sends the next one. Returns
    /// false when the listing is over (sent `Done`, or the receiver is gone).
    pub fn step(&mut self, worker: usize, ep: &Endpoint, now: Instant) -> bool {
        let msg = match self.held.take() {
            Some(m) => m,
            None => self.next(worker, ep, now),
        };
        let done = matches!(msg, SsMsg::Done);
        match self.tx.try_send(msg) {
            Ok(()) => !done,
            Err(TrySendError::Full(m)) => {
                self.held = Some(m);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn next(&mut self, worker: usize, ep: &Endpoint, now: Instant) -> SsMsg {
        let mut rows = Vec::with_capacity(SS_SLICE);
        while rows.is_empty() && self.phase != Phase::Done {
            let next = match self.phase {
                Phase::Listeners => {
                    let ls = ep.listeners_info().zip(ep.listener_backlogs());
                    for ((addr, port, syn_queue, accept_queue, _), backlog) in
                        ls.skip(self.cursor).take(SS_SLICE)
                    {
                        rows.push(SsRow::Listener {
                            worker,
                            addr,
                            port,
                            syn_queue,
                            accept_queue,
                            backlog,
                        });
                    }
                    (rows.len() == SS_SLICE).then_some(self.cursor + SS_SLICE)
                }
                Phase::Conns => {
                    let cc = ep.config().congestion_control.name();
                    ep.infos_from(self.cursor, SS_SLICE, |info| {
                        rows.push(SsRow::Conn { worker, info, cc })
                    })
                }
                Phase::TimeWait => ep.time_wait_from(now, self.cursor, SS_SLICE, |tuple, left| {
                    rows.push(SsRow::TimeWait {
                        worker,
                        tuple,
                        left,
                    })
                }),
                Phase::Done => None,
            };
            match next {
                Some(c) => {
                    self.cursor = c;
                    // A sparse stretch gave nothing: go on next iteration (bounded work).
                    if rows.is_empty() {
                        return SsMsg::Rows(rows);
                    }
                }
                None => {
                    self.cursor = 0;
                    self.phase = match self.phase {
                        Phase::Listeners => Phase::Conns,
                        Phase::Conns => Phase::TimeWait,
                        _ => Phase::Done,
                    };
                }
            }
        }
        if rows.is_empty() {
            SsMsg::Done
        } else {
            SsMsg::Rows(rows)
        }
    }
}
