//! SYN cookies (RFC 4987 §3.6), modelled on Linux's `net/ipv4/syncookies.c`.
//!
//! When a listener answers a SYN without keeping state, the connection's parameters travel in
//! our ISN (the cookie) and, when the SYN offered timestamps, in the low bits of our TSval:
//!
//! ```text
//! cookie = H0(tuple) + peer_isn + (count << 24) + ((H1(tuple, count) + mss_index) mod 2^24)
//! ```
//!
//! `count` is the number of cookie periods (64 s by default) elapsed on the caller's clock;
//! a cookie is accepted in its own period and the next (Linux's `MAX_SYNCOOKIE_AGE` = 2).
//! H0 / H1 are SipHash-2-4 under the current secret or, after a rotation, the previous one.
//! The returning ACK is valid when `ack - 1` decodes; `seq - 1` is the peer's ISN.
//! Only 2 bits of the 24 low bits carry data, so a forged ACK passes with probability
//! about 2^-22 per try (per secret tried), as in Linux.

use siphasher::sip::SipHasher24;

use super::config::TcpConfig;
use super::tuple::FourTuple;
use crate::time::{Duration, Instant};
use crate::wire::SeqNum;

/// MSS values a cookie can carry (Linux's `msstab`): the cookie encodes the largest entry not
/// above the negotiated MSS (and 536 below that, as Linux does).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// The MSS values a cookie can encode for IPv6 (Linux `msstab` in net/ipv6/syncookies.c:
/// MTUs 1280, 1480, 1500 and 9000 less 60).
pub const MSS_TABLE6: [u16; 4] = [1220, 1420, 1440, 8940];

/// The MSS table of the tuple's family.
fn mss_table(tuple: &FourTuple) -> &'static [u16; 4] {
    if tuple.is_ipv6() {
        &MSS_TABLE6
    } else {
        &MSS_TABLE
    }
}

/// Default length of one cookie period (Linux: `tcp_cookie_time()` = seconds >> 6).
pub const DEFAULT_COOKIE_PERIOD: Duration = Duration::from_secs(64);

/// A cookie is valid in the period it was made and the one after (Linux `MAX_SYNCOOKIE_AGE`).
pub const MAX_COOKIE_AGE: u32 = 2;

const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;

/// Low TSval bits holding options (Linux `TSBITS`/`TSMASK`, `TS_OPT_*`).
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_OPT_WSCALE_MASK: u32 = 0xf;
const TS_OPT_SACK: u32 = 1 << 4;
const TS_OPT_ECN: u32 = 1 << 5;
/// RFC 7323 §2.3: shift counts above 14 are treated as 14.
const MAX_WSCALE: u8 = 14;

/// Options of the SYN that we agreed to, to be kept in the SYN-ACK's TSval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynOptions {
    /// The peer's window-scale shift (RFC 7323 §2), when both sides do window scaling.
    pub wscale: Option<u8>,
    /// SACK-permitted (RFC 2018) agreed.
    pub sack_permitted: bool,
    /// ECN (RFC 3168) agreed.
    pub ecn: bool,
}

/// What a valid cookie ACK tells us about the connection to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieParams {
    /// MSS to use towards the peer (an entry of [`MSS_TABLE`]).
    pub mss: u16,
    /// The peer's window-scale shift; `None` when not negotiated or timestamps were not used.
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// The ACK carried a timestamp option echoing our cookie TSval.
    pub timestamps: bool,
    pub ecn: bool,
    /// Our ISN (the cookie): `SEG.ACK - 1`.
    pub iss: SeqNum,
    /// The peer's ISN: `SEG.SEQ - 1`.
    pub irs: SeqNum,
}

/// Cookie counters (Linux `SyncookiesSent` / `SyncookiesRecv` / `SyncookiesFailed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CookieStats {
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// SYN-cookie state for one stack: two SipHash keys and the period. Fixed size, no allocation.
#[derive(Clone)]
pub struct SynCookies {
    current: SipHasher24,
    previous: Option<SipHasher24>,
    period_ns: u64,
    pub stats: CookieStats,
}

impl core::fmt::Debug for SynCookies {
    // Never print the secrets.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SynCookies")
            .field("period_ns", &self.period_ns)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SynCookies {
    /// Cookies under `secret` with the given period (clamped to at least 1 ms).
    pub fn new(secret: [u8; 16], period: Duration) -> Self {
        SynCookies {
            current: SipHasher24::new_with_key(&secret),
            previous: None,
            period_ns: (period.as_nanos() as u64).max(1_000_000),
            stats: CookieStats::default(),
        }
    }

    /// Replaces the secret. Cookies made under the old secret stay valid until they age out;
    /// those made two rotations ago are rejected. Rotate at most once per period so no valid
    /// cookie is lost.
    pub fn rotate(&mut self, secret: [u8; 16]) {
        self.previous = Some(self.current);
        self.current = SipHasher24::new_with_key(&secret);
    }

    /// Sets both secrets at once (a secret shared with other endpoints and the XDP program,
    /// rotated by their owner): `current` makes and checks cookies, `previous` only checks.
    pub fn set_secrets(&mut self, current: [u8; 16], previous: Option<[u8; 16]>) {
        self.current = SipHasher24::new_with_key(&current);
        self.previous = previous.map(|p| SipHasher24::new_with_key(&p));
    }

    /// How long after sending a cookie an ACK may still carry it (2 periods): a listener only
    /// tries to decode ACKs as cookies within this time of its last cookie (Linux
    /// `tcp_synq_no_recent_overflow`), so ACK floods cost nothing when no cookies are out.
    pub fn validity(&self) -> Duration {
        Duration::from_nanos(self.period_ns * MAX_COOKIE_AGE as u64)
    }

    /// The cookie period counter at `now` (wraps; only its low 8 bits reach the cookie).
    pub fn count(&self, now: Instant) -> u32 {
        (now.as_nanos() / self.period_ns) as u32
    }

    /// Our ISN for a SYN from `tuple` with sequence number `peer_isn`, encoding `mss` (the MSS
    /// we will use: the peer's MSS option, or 536 when absent, RFC 9293 §3.7.1, capped by ours).
    /// Returns the cookie and the MSS actually encoded.
    pub fn generate(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        peer_isn: SeqNum,
        mss: u16,
    ) -> (SeqNum, u16) {
        let table = mss_table(tuple);
        let index = table.iter().rposition(|&m| m <= mss).unwrap_or(0);
        let count = self.count(now);
        let key = &self.current;
        let cookie = hash(key, tuple, 0, 0)
            .wrapping_add(peer_isn.0)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(hash(key, tuple, count, 1).wrapping_add(index as u32) & COOKIE_MASK);
        self.stats.sent += 1;
        (SeqNum(cookie), table[index])
    }

    /// Our TSval for the cookie SYN-ACK (Linux `cookie_init_timestamp`): `ts_now` with the
    /// agreed options in its low 6 bits, never above `ts_now` (later TSvals come from the
    /// normal clock and must not go backwards, RFC 7323 §5.4).
    pub fn syn_ack_timestamp(ts_now: u32, opts: SynOptions) -> u32 {
        let wscale = opts
            .wscale
            .map_or(TS_OPT_WSCALE_MASK, |w| w.min(MAX_WSCALE) as u32);
        let options = wscale
            | if opts.sack_permitted { TS_OPT_SACK } else { 0 }
            | if opts.ecn { TS_OPT_ECN } else { 0 };
        let ts = (ts_now & !TS_MASK) | options;
        if ts > ts_now {
            ts.wrapping_sub(TS_MASK + 1)
        } else {
            ts
        }
    }

    /// Validates the ACK that completes a cookie handshake (RFC 4987 §3.6): `seg_seq` and
    /// `seg_ack` of the ACK, `tsecr` its timestamp echo if it had a timestamp option. The
    /// options are rejected when `cfg` now disables what they claim (Linux
    /// `cookie_timestamp_decode`). Counts accepted / rejected.
    pub fn check(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        seg_seq: SeqNum,
        seg_ack: SeqNum,
        tsecr: Option<u32>,
        cfg: &TcpConfig,
    ) -> Option<CookieParams> {
        let result = self.check_inner(now, tuple, seg_seq, seg_ack, tsecr, cfg);
        match result {
            Some(_) => self.stats.accepted += 1,
            None => self.stats.rejected += 1,
        }
        result
    }

    fn check_inner(
        &self,
        now: Instant,
        tuple: &FourTuple,
        seg_seq: SeqNum,
        seg_ack: SeqNum,
        tsecr: Option<u32>,
        cfg: &TcpConfig,
    ) -> Option<CookieParams> {
        let iss = seg_ack - 1u32;
        let irs = seg_seq - 1u32;
        let count = self.count(now);
        let index = core::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find_map(|key| decode(key, tuple, iss.0, irs.0, count))?;
        let mut params = CookieParams {
            mss: mss_table(tuple)[index],
            wscale: None,
            sack_permitted: false,
            timestamps: false,
            ecn: false,
            iss,
            irs,
        };
        let Some(options) = tsecr else {
            return Some(params); // No timestamps: no room for options, as in Linux.
        };
        if !cfg.timestamps {
            return None;
        }
        params.timestamps = true;
        params.sack_permitted = options & TS_OPT_SACK != 0;
        params.ecn = options & TS_OPT_ECN != 0;
        if params.sack_permitted && !cfg.sack {
            return None;
        }
        let wscale = options & TS_OPT_WSCALE_MASK;
        if wscale != TS_OPT_WSCALE_MASK {
            if !cfg.window_scaling || wscale > MAX_WSCALE as u32 {
                return None;
            }
            params.wscale = Some(wscale as u8);
        }
        Some(params)
    }
}

/// Linux `check_tcp_syn_cookie`: strips H0 and the peer ISN, checks the age of the embedded
/// count, strips H1 and returns the MSS index if it is a valid one.
fn decode(
    key: &SipHasher24,
    tuple: &FourTuple,
    cookie: u32,
    irs: u32,
    count: u32,
) -> Option<usize> {
    let rest = cookie.wrapping_sub(hash(key, tuple, 0, 0).wrapping_add(irs));
    let age = count.wrapping_sub(rest >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
    if age >= MAX_COOKIE_AGE {
        return None;
    }
    let made = count.wrapping_sub(age);
    let index = rest.wrapping_sub(hash(key, tuple, made, 1)) & COOKIE_MASK;
    (index < MSS_TABLE.len() as u32).then_some(index as usize)
}

/// SipHash-2-4 of (tag, tuple, count), truncated to 32 bits (Linux `cookie_hash`).
fn hash(key: &SipHasher24, tuple: &FourTuple, count: u32, which: u8) -> u32 {
    let t = tuple.to_bytes();
    let t = t.as_ref();
    let mut input = [0u8; 41];
    input[0] = b'C' + which;
    input[1..1 + t.len()].copy_from_slice(t);
    input[1 + t.len()..5 + t.len()].copy_from_slice(&count.to_be_bytes());
    key.hash(&input[..5 + t.len()]) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};

    const KEY: [u8; 16] = *b"cookie-secret-01";
    const KEY2: [u8; 16] = *b"cookie-secret-02";
    const KEY3: [u8; 16] = *b"cookie-secret-03";

    fn t4(l: Ipv4Addr, lp: u16, r: Ipv4Addr, rp: u16) -> FourTuple {
        FourTuple::new(SocketAddrV4::new(l, lp), SocketAddrV4::new(r, rp))
    }

    fn tuple() -> FourTuple {
        t4(
            Ipv4Addr::new(198, 18, 0, 1),
            80,
            Ipv4Addr::new(198, 18, 0, 2),
            40000,
        )
    }

    fn jar() -> SynCookies {
        SynCookies::new(KEY, DEFAULT_COOKIE_PERIOD)
    }

    /// Makes a cookie at `at` for peer ISN `irs` and returns (seg_seq, seg_ack) of the third ACK.
    fn third_ack(c: &mut SynCookies, at: Instant, irs: u32, mss: u16) -> (SeqNum, SeqNum) {
        let (iss, _) = c.generate(at, &tuple(), SeqNum(irs), mss);
        (SeqNum(irs) + 1u32, iss + 1u32)
    }

    #[test]
    fn round_trip_every_mss_and_option_combo() {
        let cfg = TcpConfig::default();
        let now = Instant::from_secs(1000);
        let mut c = jar();
        let mut n = 0;
        for (i, &mss) in MSS_TABLE.iter().enumerate() {
            for wscale in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    for ecn in [false, true] {
                        for ts in [false, true] {
                            let irs = 0xfff0_0000u32.wrapping_add(n * 7919);
                            let (iss, enc) = c.generate(now, &tuple(), SeqNum(irs), mss);
                            assert_eq!(enc, MSS_TABLE[i]);
                            let opts = SynOptions {
                                wscale,
                                sack_permitted: sack,
                                ecn,
                            };
                            let tsval = SynCookies::syn_ack_timestamp(5_000_000 + n, opts);
                            let tsecr = ts.then_some(tsval);
                            let p =
                                c.check(now, &tuple(), SeqNum(irs) + 1u32, iss + 1u32, tsecr, &cfg);
                            let want = CookieParams {
                                mss,
                                wscale: if ts { wscale } else { None },
                                sack_permitted: ts && sack,
                                timestamps: ts,
                                ecn: ts && ecn,
                                iss,
                                irs: SeqNum(irs),
                            };
                            assert_eq!(p, Some(want), "mss {mss} {opts:?} ts {ts}");
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(
            c.stats,
            CookieStats {
                sent: n as u64,
                accepted: n as u64,
                rejected: 0
            }
        );
    }

    #[test]
    fn mss_rounds_down_to_table_entry() {
        let mut c = jar();
        let t = Instant::ZERO;
        for (mss, want) in [
            (100, 536),
            (536, 536),
            (1299, 536),
            (1300, 1300),
            (1459, 1440),
            (9000, 1460),
        ] {
            let (seq, ack) = third_ack(&mut c, t, 1, mss);
            assert_eq!(c.generate(t, &tuple(), SeqNum(1), mss).1, want);
            let p = c
                .check(t, &tuple(), seq, ack, None, &TcpConfig::default())
                .unwrap();
            assert_eq!(p.mss, want);
        }
    }

    #[test]
    fn wrong_tuple_or_peer_isn_rejected() {
        let cfg = TcpConfig::default();
        let mut c = jar();
        let now = Instant::from_secs(5);
        let (seq, ack) = third_ack(&mut c, now, 1234, 1460);
        let (l, r) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let others = [
            t4(Ipv4Addr::new(198, 18, 0, 9), 80, r, 40000),
            t4(l, 81, r, 40000),
            t4(l, 80, Ipv4Addr::new(198, 18, 0, 3), 40000),
            t4(l, 80, r, 40001),
        ];
        for t in others {
            assert_eq!(c.check(now, &t, seq, ack, None, &cfg), None, "{t:?}");
        }
        assert_eq!(c.check(now, &tuple(), seq + 1000u32, ack, None, &cfg), None);
        // As in Linux, the peer ISN only shifts the low 24 bits: one more decodes to the next
        // lower MSS index. Harmless: forging it still needs the cookie from our SYN-ACK.
        let shifted = c.check(now, &tuple(), seq + 1u32, ack, None, &cfg).unwrap();
        assert_eq!((shifted.mss, shifted.irs), (1440, SeqNum(1234) + 1u32));
        assert_eq!(
            c.check(now, &tuple(), seq, ack, None, &cfg).unwrap().mss,
            1460
        );
        assert_eq!(
            c.stats,
            CookieStats {
                sent: 1,
                accepted: 2,
                rejected: 5
            }
        );
    }

    #[test]
    fn valid_for_current_and_next_period_only() {
        let cfg = TcpConfig::default();
        let mut c = jar();
        let made = Instant::from_secs(64 * 10 + 63); // last second of period 10
        let (seq, ack) = third_ack(&mut c, made, 99, 1440);
        let ok = |c: &mut SynCookies, at| c.check(at, &tuple(), seq, ack, None, &cfg).is_some();
        assert!(ok(&mut c, made));
        assert!(ok(&mut c, Instant::from_secs(64 * 11))); // period 11
        assert!(ok(&mut c, Instant::from_nanos(64 * 12 * 1_000_000_000 - 1)));
        assert!(!ok(&mut c, Instant::from_secs(64 * 12))); // period 12: expired
        assert!(!ok(&mut c, Instant::from_secs(64 * 9))); // made "in the future"
                                                          // Configurable period: 1 s.
        let mut c = SynCookies::new(KEY, Duration::from_secs(1));
        let (seq, ack) = third_ack(&mut c, Instant::from_millis(500), 99, 536);
        assert!(c
            .check(Instant::from_millis(1999), &tuple(), seq, ack, None, &cfg)
            .is_some());
        assert!(c
            .check(Instant::from_millis(2000), &tuple(), seq, ack, None, &cfg)
            .is_none());
    }

    #[test]
    fn tampered_ack_rejected() {
        let cfg = TcpConfig::default();
        let mut c = jar();
        let now = Instant::from_secs(77);
        let (seq, ack) = third_ack(&mut c, now, 0xdead_beef, 1460);
        for bit in 0..32 {
            let bad = SeqNum(ack.0 ^ (1 << bit));
            assert_eq!(
                c.check(now, &tuple(), seq, bad, None, &cfg),
                None,
                "bit {bit}"
            );
        }
        for delta in [1u32, 2, 3, 4] {
            assert_eq!(c.check(now, &tuple(), seq, ack + delta, None, &cfg), None);
        }
        assert_eq!(c.stats.rejected, 36);
        assert_eq!(c.stats.accepted, 0);
    }

    #[test]
    fn secret_rotation_keeps_one_previous_secret() {
        let cfg = TcpConfig::default();
        let mut c = jar();
        let now = Instant::from_secs(10);
        let (seq, ack) = third_ack(&mut c, now, 5, 1300);
        c.rotate(KEY2);
        assert_eq!(
            c.check(now, &tuple(), seq, ack, None, &cfg).map(|p| p.mss),
            Some(1300)
        );
        let (seq2, ack2) = third_ack(&mut c, now, 6, 1460);
        assert!(c.check(now, &tuple(), seq2, ack2, None, &cfg).is_some());
        c.rotate(KEY3);
        assert_eq!(c.check(now, &tuple(), seq, ack, None, &cfg), None); // two rotations ago
        assert!(c.check(now, &tuple(), seq2, ack2, None, &cfg).is_some());
        // Another jar under KEY2 alone accepts the second cookie, not the first.
        let mut k2 = SynCookies::new(KEY2, DEFAULT_COOKIE_PERIOD);
        assert!(k2.check(now, &tuple(), seq2, ack2, None, &cfg).is_some());
        assert!(k2.check(now, &tuple(), seq, ack, None, &cfg).is_none());
    }

    #[test]
    fn set_secrets_is_a_rotation_by_the_caller() {
        let cfg = TcpConfig::default();
        let now = Instant::from_secs(10);
        let mut c = jar();
        let (seq, ack) = third_ack(&mut c, now, 5, 1300);
        let mut shared = SynCookies::new(KEY3, DEFAULT_COOKIE_PERIOD);
        shared.set_secrets(KEY2, Some(KEY));
        assert!(shared.check(now, &tuple(), seq, ack, None, &cfg).is_some());
        shared.set_secrets(KEY2, None);
        assert!(shared.check(now, &tuple(), seq, ack, None, &cfg).is_none());
    }

    #[test]
    fn options_rejected_when_config_disables_them() {
        let mut c = jar();
        let now = Instant::ZERO;
        let (seq, ack) = third_ack(&mut c, now, 77, 1460);
        let opts = SynOptions {
            wscale: Some(7),
            sack_permitted: true,
            ecn: false,
        };
        let ts = SynCookies::syn_ack_timestamp(100_000, opts);
        let mut cfg = TcpConfig::default();
        assert!(c.check(now, &tuple(), seq, ack, Some(ts), &cfg).is_some());
        cfg.sack = false;
        assert!(c.check(now, &tuple(), seq, ack, Some(ts), &cfg).is_none());
        cfg.sack = true;
        cfg.window_scaling = false;
        assert!(c.check(now, &tuple(), seq, ack, Some(ts), &cfg).is_none());
        cfg.window_scaling = true;
        cfg.timestamps = false;
        assert!(c.check(now, &tuple(), seq, ack, Some(ts), &cfg).is_none());
        // A tampered TSecr claiming shift 15 is "no window scaling" (0xf), 0..=14 are shifts.
        let cfg = TcpConfig::default();
        let p = c.check(now, &tuple(), seq, ack, Some(0x0f), &cfg).unwrap();
        assert_eq!(p.wscale, None);
    }

    proptest::proptest! {
        /// Any tuple, peer ISN, MSS and time: the cookie decodes within its period and the
        /// next; garbage ACKs never panic.
        #[test]
        fn round_trip_any_input(
            addrs in proptest::array::uniform4(proptest::num::u32::ANY),
            irs: u32, mss: u16, made_ns in 0u64..1 << 50, delay_ns in 0u64..64_000_000_000,
            junk_seq: u32, junk_ack: u32, junk_ts: Option<u32>,
        ) {
            let t = t4(Ipv4Addr::from(addrs[0]), addrs[1] as u16, Ipv4Addr::from(addrs[2]), addrs[3] as u16);
            let cfg = TcpConfig::default();
            let mut c = jar();
            let made = Instant::from_nanos(made_ns);
            let (iss, enc) = c.generate(made, &t, SeqNum(irs), mss);
            let p = c.check(made + Duration::from_nanos(delay_ns), &t, SeqNum(irs) + 1u32, iss + 1u32, None, &cfg);
            proptest::prop_assert_eq!(p.map(|p| (p.mss, p.iss, p.irs)), Some((enc, iss, SeqNum(irs))));
            let _ = c.check(made, &t, SeqNum(junk_seq), SeqNum(junk_ack), junk_ts, &cfg);
        }
    }

    #[test]
    fn syn_ack_timestamp_never_exceeds_clock() {
        let opts = SynOptions {
            wscale: Some(3),
            sack_permitted: true,
            ecn: true,
        };
        let bits = 3 | TS_OPT_SACK | TS_OPT_ECN; // 0b11_0011 = 51
                                                 // Low bits of the clock above the options: keep the clock's upper bits.
        assert_eq!(
            SynCookies::syn_ack_timestamp(1000 * 64 + 60, opts),
            1000 * 64 + bits
        );
        // Below: step back one 64-tick block.
        assert_eq!(
            SynCookies::syn_ack_timestamp(1000 * 64 + 10, opts),
            999 * 64 + bits
        );
        // Wraps below zero rather than exceeding the clock.
        assert_eq!(SynCookies::syn_ack_timestamp(5, opts), u32::MAX - 63 + bits);
        // No window scaling is 0xf; shifts above 14 are clamped to 14 (RFC 7323 §2.3).
        assert_eq!(
            SynCookies::syn_ack_timestamp(640, SynOptions::default()),
            640 - 64 + 0xf
        );
        let big = SynOptions {
            wscale: Some(20),
            ..SynOptions::default()
        };
        assert_eq!(SynCookies::syn_ack_timestamp(63, big) & TS_MASK, 14);
    }

    fn tuple6(remote: &str) -> FourTuple {
        FourTuple::new_v6(
            SocketAddrV6::new("2001:2::1".parse().unwrap(), 80, 0, 0),
            SocketAddrV6::new(remote.parse().unwrap(), 40000, 0, 0),
        )
    }

    #[test]
    fn ipv6_cookie_over_the_ipv6_tuple_with_the_ipv6_mss_table() {
        // Linux net/ipv6/syncookies.c: the hash covers the 128-bit addresses; the MSS is
        // one of msstab6 (1280/1480/1500/9000 - 60).
        let cfg = TcpConfig::default();
        let mut c = jar();
        let now = Instant::from_secs(5);
        let t = tuple6("2001:2::2");
        for (offered, encoded) in [(1440, 1440), (1439, 1420), (9000, 8940), (536, 1220)] {
            let (iss, enc) = c.generate(now, &t, SeqNum(77), offered);
            assert_eq!(enc, encoded);
            let p = c
                .check(now, &t, SeqNum(78), iss + 1u32, None, &cfg)
                .unwrap();
            assert_eq!((p.mss, p.iss, p.irs), (encoded, iss, SeqNum(77)));
            // Any other peer address (even one differing in the low 64 bits only) fails.
            assert_eq!(
                c.check(
                    now,
                    &tuple6("2001:2::3"),
                    SeqNum(78),
                    iss + 1u32,
                    None,
                    &cfg
                ),
                None
            );
            assert_eq!(
                c.check(
                    now,
                    &tuple6("2001:2:0:1::2"),
                    SeqNum(78),
                    iss + 1u32,
                    None,
                    &cfg
                ),
                None
            );
        }
    }
}
