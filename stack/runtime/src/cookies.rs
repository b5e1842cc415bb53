//! SYN cookies shared by every worker and the XDP program (`xdp_syncookies = 1`).
//!
//! A cookie the XDP program makes must validate in whichever worker its ACK reaches, so the
//! whole stack uses one secret at a time. Rather than passing secrets between threads, every
//! party derives the secret of a rotation epoch from one master key:
//! `secret(e) = SipHash-2-4(master, "xdptcp-cookie" ‖ e ‖ half)` (two halves → 16 bytes),
//! with `e = CLOCK_MONOTONIC / rotation` and `rotation` = the cookie lifetime (two 64 s
//! periods, what the endpoint used when it rotated by itself). Workers switch at the epoch
//! boundary (current `secret(e)`, previous `secret(e - 1)`), once per loop iteration at most;
//! the control thread moves the XDP program to `secret(e)` [`XDP_LAG`] later, so the program
//! never makes a cookie under a secret a worker does not know yet.
//!
//! [`FlagPolicy`] decides, for `tcp_syncookies = 1`, when a listener's "cookies in XDP" flag
//! goes on (a worker sent cookies: its SYN queue overflowed) and off again (pressure gone).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher24;

use crate::tcp::{DEFAULT_COOKIE_PERIOD, MAX_COOKIE_AGE};
use crate::time::{Duration, Instant};

/// How long after a worker the XDP program switches to a new secret.
pub const XDP_LAG: Duration = Duration::from_secs(1);

/// The stack's cookie secrets as a function of time. `Copy`: each worker holds its own.
#[derive(Clone, Copy)]
pub struct SharedCookieSecrets {
    master: SipHasher24,
    rotation_ns: u64,
}

impl std::fmt::Debug for SharedCookieSecrets {
    // Never print the master key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCookieSecrets")
            .field("rotation_ns", &self.rotation_ns)
            .finish_non_exhaustive()
    }
}

impl SharedCookieSecrets {
    /// Secrets derived from `master`, rotated every cookie lifetime (2 × 64 s).
    pub fn new(master: [u8; 16]) -> Self {
        let rotation = DEFAULT_COOKIE_PERIOD.as_nanos() as u64 * u64::from(MAX_COOKIE_AGE);
        SharedCookieSecrets {
            master: SipHasher24::new_with_key(&master),
            rotation_ns: rotation,
        }
    }

    /// The cookie period the secrets are meant for (what the endpoints and the program use).
    pub fn period(&self) -> Duration {
        DEFAULT_COOKIE_PERIOD
    }

    /// The rotation epoch at `now`.
    pub fn epoch(&self, now: Instant) -> u64 {
        now.as_nanos() / self.rotation_ns
    }

    /// The secret of epoch `e`.
    pub fn secret(&self, e: u64) -> [u8; 16] {
        let mut out = [0u8; 16];
        for half in 0..2u8 {
            let mut input = [0u8; 22];
            input[..13].copy_from_slice(b"xdptcp-cookie");
            input[13..21].copy_from_slice(&e.to_be_bytes());
            input[21] = half;
            let h = self.master.hash(&input).to_le_bytes();
            out[usize::from(half) * 8..][..8].copy_from_slice(&h);
        }
        out
    }

    /// (current, previous) secrets at `now`, as `Endpoint::set_cookie_secrets` takes them.
    pub fn at(&self, now: Instant) -> ([u8; 16], Option<[u8; 16]>) {
        let e = self.epoch(now);
        (self.secret(e), e.checked_sub(1).map(|p| self.secret(p)))
    }

    /// The secrets the XDP program uses at `now`: the workers' of [`XDP_LAG`] ago.
    pub fn xdp_at(&self, now: Instant) -> ([u8; 16], Option<[u8; 16]>) {
        let lagged = Instant::from_nanos(now.as_nanos().saturating_sub(XDP_LAG.as_nanos() as u64));
        self.at(lagged)
    }

    /// When the current epoch ends.
    pub fn next_change(&self, now: Instant) -> Instant {
        Instant::from_nanos((self.epoch(now) + 1) * self.rotation_ns)
    }
}

/// How long, with no worker cookie and little XDP cookie work, before a listener's flag
/// goes off again.
pub const FLAG_HOLD: Duration = Duration::from_secs(2);

/// `tcp_syncookies = 1` with XDP cookies: the per-listener flag of the steering program.
///
/// On: a worker sent a cookie for the listener (its SYN queue overflowed, `cookies_sent`
/// grew). Off: for [`FLAG_HOLD`] no worker sent one and the XDP program answered fewer than
/// `quiet_syns` SYNs (half the SYN backlog: a rate the workers' queues absorb). While the flag
/// is on the XDP program takes the SYNs, so the workers' queues drain; the hold keeps a
/// continuing flood in XDP instead of flipping back and forth.
#[derive(Debug, Clone)]
pub struct FlagPolicy {
    quiet_syns: u64,
    listeners: Vec<FlagState>,
}

#[derive(Debug, Clone)]
struct FlagState {
    addr: Ipv4Addr,
    port: u16,
    /// Workers' total `cookies_sent` at the last tick.
    cookies: u64,
    on: bool,
    /// Since when it has been quiet (no worker cookie), and the XDP counter then.
    quiet_since: Instant,
    xdp_then: u64,
}

impl FlagPolicy {
    /// A policy with no listeners yet; `quiet_syns` as above.
    pub fn new(quiet_syns: u64) -> Self {
        FlagPolicy {
            quiet_syns,
            listeners: Vec::new(),
        }
    }

    /// One tick: `cookies_sent` is per listener the sum over workers; `xdp_syn_acks` the
    /// program's counter. Calls `flip(addr, port, on)` for each change; returns the flips.
    pub fn tick(
        &mut self,
        now: Instant,
        cookies_sent: &[(Ipv4Addr, u16, u64)],
        xdp_syn_acks: u64,
        mut flip: impl FnMut(Ipv4Addr, u16, bool),
    ) -> u64 {
        let mut flips = 0;
        for &(addr, port, sent) in cookies_sent {
            let i = match self
                .listeners
                .iter()
                .position(|l| (l.addr, l.port) == (addr, port))
            {
                Some(i) => i,
                None => {
                    self.listeners.push(FlagState {
                        addr,
                        port,
                        cookies: sent,
                        on: false,
                        quiet_since: now,
                        xdp_then: xdp_syn_acks,
                    });
                    self.listeners.len() - 1
                }
            };
            let l = &mut self.listeners[i];
            let grew = sent > l.cookies;
            l.cookies = sent;
            if grew {
                l.quiet_since = now;
                l.xdp_then = xdp_syn_acks;
                if !l.on {
                    l.on = true;
                    flips += 1;
                    flip(addr, port, true);
                }
            } else if l.on && now.saturating_since(l.quiet_since) >= FLAG_HOLD {
                if xdp_syn_acks.wrapping_sub(l.xdp_then) < self.quiet_syns {
                    l.on = false;
                    flips += 1;
                    flip(addr, port, false);
                }
                // Start the next quiet window either way.
                l.quiet_since = now;
                l.xdp_then = xdp_syn_acks;
            }
        }
        flips
    }
}

/// The XDP cookie counters for `xdptcp stat`, refreshed by the stack's cookie thread.
#[derive(Debug, Default)]
pub struct XdpCookieStats {
    /// SYNs answered in XDP.
    pub syn_acks: AtomicU64,
    /// SYNs in cookie mode left to the workers (odd headers).
    pub slow: AtomicU64,
    /// Flag flips of `tcp_syncookies = 1` (on and off).
    pub mode_flips: AtomicU64,
    /// Secret rotations written to the program.
    pub rotations: AtomicU64,
}

impl XdpCookieStats {
    /// (name, value) in report order.
    pub fn counters(&self) -> [(&'static str, u64); 4] {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("xdp_cookie_syn_acks", r(&self.syn_acks)),
            ("xdp_cookie_slow", r(&self.slow)),
            ("xdp_cookie_mode_flips", r(&self.mode_flips)),
            ("xdp_cookie_rotations", r(&self.rotations)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    #[test]
    fn secrets_rotate_per_epoch_and_keep_the_previous_one() {
        let s = SharedCookieSecrets::new(*b"master-key-00001");
        let t = Instant::from_secs(1000);
        let (cur, prev) = s.at(t);
        assert_eq!(s.at(t), (cur, prev), "deterministic");
        let next = s.next_change(t);
        assert_eq!(next.as_nanos() % (128 * 1_000_000_000), 0);
        let (cur2, prev2) = s.at(next);
        assert_ne!(cur2, cur);
        assert_eq!(prev2, Some(cur));
        // The program lags: just after the boundary it still uses the old secret.
        assert_eq!(s.xdp_at(next).0, cur);
        assert_eq!(s.xdp_at(next + XDP_LAG).0, cur2);
        assert_eq!(s.at(Instant::ZERO).1, None);
        let other = SharedCookieSecrets::new(*b"master-key-00002");
        assert_ne!(other.at(t).0, cur);
    }

    #[test]
    fn flag_goes_on_with_worker_cookies_and_off_after_quiet_hold() {
        let mut p = FlagPolicy::new(100);
        let log = std::cell::RefCell::new(Vec::new());
        let tick = |p: &mut FlagPolicy, ms: u64, sent: u64, xdp: u64| {
            p.tick(
                Instant::from_millis(ms),
                &[(A, 80, sent)],
                xdp,
                |_, _, on| log.borrow_mut().push((ms, on)),
            )
        };
        assert_eq!(tick(&mut p, 0, 0, 0), 0);
        assert_eq!(tick(&mut p, 50, 3, 0), 1); // worker overflowed: on
        assert_eq!(tick(&mut p, 100, 3, 5_000), 0);
        // A flood keeps XDP busy: after the hold it stays on.
        assert_eq!(tick(&mut p, 2_100, 3, 50_000), 0);
        // Quiet for a whole hold: off.
        assert_eq!(tick(&mut p, 4_100, 3, 50_050), 1);
        assert_eq!(tick(&mut p, 4_200, 3, 50_050), 0);
        assert_eq!(tick(&mut p, 4_300, 4, 50_050), 1); // overflow again: on
        assert_eq!(
            log.into_inner(),
            vec![(50, true), (4_100, false), (4_300, true)]
        );
    }
}
