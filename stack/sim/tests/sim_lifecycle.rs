//! The connection lifecycle between two endpoints over the deterministic
//! simulated network (stack/sim/src), every scenario under 0 %, 5 % and 20 % loss and with
//! duplication, reordering and corruption, over many seeds. Each run checks that both ends
//! agree on the outcome (what "agree" means per scenario: `xdptcp_sim::scenario::Scenario`
//! and `Verdict` docs; the checks: `Outcome::check`). A failing run panics with its
//! scenario, seed and link settings, and prints the packet trace.
//!
//! Run: `cargo test --release -p xdptcp --test sim_lifecycle`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use xdptcp_core::tcp::conn::ConnError;
use xdptcp_core::tcp::conn::State::{self, *};
use xdptcp_core::tcp::TcpConfig;
use xdptcp_core::time::Duration;
use xdptcp_sim::scenario::{
    run, run_hooked, run_with, Configs, Outcome, Scenario, Verdict, PROBE_AFTER,
};
use xdptcp_sim::{set_quiet_traces, LinkConfig, LinkStats, Side};

/// Verdict counts ("Scenario/Verdict" -> runs) and what the links did, summed.
struct Sweep {
    verdicts: BTreeMap<String, u32>,
    links: LinkStats,
    rejected: u64,
}

/// Runs every scenario for every seed; collects verdict counts and failures (the trace of
/// the first failure per scenario is printed, the rest are listed by seed).
fn sweep(link: LinkConfig, seeds: std::ops::Range<u64>) -> Sweep {
    let mut verdicts = BTreeMap::new();
    let mut failures = Vec::new();
    let mut links = LinkStats::default();
    let mut rejected = 0;
    for scn in Scenario::ALL {
        let mut failed = false;
        for seed in seeds.clone() {
            set_quiet_traces(failed);
            let r = catch_unwind(AssertUnwindSafe(|| run(scn, seed, link.clone())));
            set_quiet_traces(false);
            match r {
                Ok(o) => {
                    *verdicts
                        .entry(format!("{scn:?}/{:?}", o.verdict))
                        .or_insert(0) += 1;
                    for l in o.links {
                        links.sent += l.sent;
                        links.lost += l.lost;
                        links.duplicated += l.duplicated;
                        links.reordered += l.reordered;
                        links.corrupted += l.corrupted;
                    }
                    rejected += o.rejected[0] + o.rejected[1];
                }
                Err(e) => {
                    failed = true;
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{scn:?} seed {seed}: {}", first_line(&msg)));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing runs (traces of the first per scenario above):\n{}",
        failures.len(),
        failures.join("\n")
    );
    Sweep {
        verdicts,
        links,
        rejected,
    }
}

fn first_line(s: &str) -> &str {
    let s = s.split("\n  client:").next().unwrap_or(s);
    &s[..s.len().min(400)]
}

/// Every run ran its whole course: connections completed (or, for `Refused`, were refused).
fn all_completed(sw: &Sweep, runs_per_scenario: u32) {
    let v = &sw.verdicts;
    for scn in Scenario::ALL {
        let want = if scn == Scenario::Refused {
            Verdict::Refused
        } else {
            Verdict::Completed
        };
        let n = v.get(&format!("{scn:?}/{want:?}")).copied().unwrap_or(0);
        assert_eq!(n, runs_per_scenario, "{scn:?}: verdicts {v:?}");
    }
}

fn clean() -> LinkConfig {
    LinkConfig::default()
}

// ---- exact paths on a clean link ----

fn states(o: &Outcome) -> (Vec<State>, Vec<State>) {
    (o.client.states.clone(), o.server.states.clone())
}

/// On a clean 10 ms link every scenario takes exactly the RFC 9293 path of its diagram
/// (§3.6 figures 12 and 13 for the closes); see the `Scenario` docs.
#[test]
fn clean_link_exact_state_paths() {
    let cases: [(Scenario, &[State], &[State]); 10] = [
        (Scenario::Handshake, &[SynSent, Established], &[Established]),
        (
            Scenario::ClientClose,
            &[SynSent, Established, FinWait1, FinWait2, TimeWait, Closed],
            &[Established, CloseWait, LastAck, Closed],
        ),
        (
            Scenario::FinWait2Timeout,
            &[SynSent, Established, FinWait1, FinWait2, Closed],
            &[Established, CloseWait, LastAck, Closed],
        ),
        (
            Scenario::ServerClose,
            &[SynSent, Established, CloseWait, LastAck, Closed],
            &[Established, FinWait1, FinWait2, TimeWait, Closed],
        ),
        (
            Scenario::SimultaneousClose,
            &[SynSent, Established, FinWait1, Closing, TimeWait, Closed],
            &[Established, FinWait1, Closing, TimeWait, Closed],
        ),
        (
            Scenario::HalfClose,
            &[SynSent, Established, FinWait1, FinWait2, TimeWait, Closed],
            &[Established, CloseWait, LastAck, Closed],
        ),
        (
            Scenario::Abort,
            &[SynSent, Established, Closed],
            &[Established, Closed],
        ),
        (
            Scenario::ServerAbort,
            &[SynSent, Established, Closed],
            &[Established, Closed],
        ),
        (
            Scenario::CloseUnread,
            &[SynSent, Established, Closed],
            &[Established, Closed],
        ),
        (Scenario::Refused, &[SynSent, Closed], &[]),
    ];
    for (scn, c, s) in cases {
        let o = run(scn, 1, clean());
        assert_eq!(states(&o), (c.to_vec(), s.to_vec()), "{scn:?}");
    }
}

/// TIME-WAIT lasts exactly 2MSL when no FIN is retransmitted into it, and a clean
/// ClientClose is over (all records gone) right after.
#[test]
fn clean_link_time_wait_is_exactly_two_msl() {
    let o = run(Scenario::ClientClose, 3, clean());
    let (t0, t1) = o.client.time_wait.unwrap();
    // RFC 9293 §3.10.7.4: TIME-WAIT lasts 2MSL. Timers live on the endpoint's 1 ms wheel,
    // which never fires early and at most one tick late.
    let held = t1.unwrap() - t0;
    assert!(
        held >= o.msl * 2 && held <= o.msl * 2 + Duration::from_millis(1),
        "TIME-WAIT held {held:?}, want 2MSL = {:?} (+ at most one 1 ms tick)",
        o.msl * 2
    );
    assert!(
        o.elapsed < o.msl * 2 + Duration::from_secs(1),
        "{:?}",
        o.elapsed
    );
}

/// A refused connect takes one round trip: SYN, RST, Error(Refused).
#[test]
fn clean_link_refused_in_one_round_trip() {
    let o = run(Scenario::Refused, 1, clean());
    assert_eq!(o.verdict, Verdict::Refused);
    assert_eq!(o.server_rst_closed, 1);
    let start = xdptcp_core::time::Instant::from_secs(1_000) + Duration::from_nanos(1);
    assert_eq!(o.client.error_at, Some(start + Duration::from_millis(20)));
}

// ---- sweeps ----

#[test]
fn no_loss_200_seeds() {
    let sw = sweep(clean(), 0..200);
    all_completed(&sw, 200);
    assert_eq!(sw.links.lost + sw.links.duplicated + sw.links.corrupted, 0);
}

/// At 5 % loss a connect fails only if 7 SYN rounds in a row fail (p ≈ 0.1^7): every run
/// must complete.
#[test]
fn loss_5pct_400_seeds() {
    let sw = sweep(clean().with_loss(0.05), 1000..1400);
    all_completed(&sw, 400);
    let l = sw.links;
    assert!(
        l.lost * 100 > l.sent * 4 && l.lost * 100 < l.sent * 6,
        "{l:?}"
    );
}

/// At 20 % loss a SYN round fails with p = 1 - 0.8^2 = 0.36, so SYN retries can run out
/// (0.36^7 ≈ 0.08 % per run) and a half-open server connection can expire: such runs must
/// still agree (`Verdict`), and almost all runs complete.
#[test]
fn loss_20pct_300_seeds() {
    let sw = sweep(clean().with_loss(0.2), 2000..2300);
    at_least_completed(&sw, 295);
    let l = sw.links;
    assert!(
        l.lost * 100 > l.sent * 18 && l.lost * 100 < l.sent * 22,
        "{l:?}"
    );
    eprintln!("20 % loss verdicts: {:?}", sw.verdicts);
}

fn at_least_completed(sw: &Sweep, min: u32) {
    for scn in Scenario::ALL {
        let want = if scn == Scenario::Refused {
            Verdict::Refused
        } else {
            Verdict::Completed
        };
        let n = sw
            .verdicts
            .get(&format!("{scn:?}/{want:?}"))
            .copied()
            .unwrap_or(0);
        assert!(n >= min, "{scn:?}: only {n} completed: {:?}", sw.verdicts);
    }
}

/// At 45 % loss everything can legitimately fail: connects time out, half-open connections
/// expire, FIN-WAIT-2 times out, tcp_retries2 runs out. The ends must still agree, and
/// connect timeouts must actually occur (that verdict is exercised).
#[test]
fn loss_45pct_300_seeds_agree() {
    let sw = sweep(clean().with_loss(0.45), 9000..9300);
    let v = &sw.verdicts;
    let count = |verdict: Verdict| -> u32 {
        v.iter()
            .filter(|(k, _)| k.ends_with(&format!("/{verdict:?}")))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(count(Verdict::ConnectTimedOut) > 0, "{v:?}");
    eprintln!("45 % loss verdicts: {v:?}");
}

#[test]
fn duplication_10pct_300_seeds() {
    let sw = sweep(clean().with_duplicate(0.1), 3000..3300);
    all_completed(&sw, 300);
    assert!(sw.links.duplicated > 1000, "{:?}", sw.links);
}

/// 20 % of packets held back up to 50 ms (5 round trips' worth of overtaking) plus 3 ms
/// jitter on everything.
#[test]
fn reordering_300_seeds() {
    let link = clean()
        .with_reorder(0.2, Duration::from_millis(50))
        .with_jitter(Duration::from_millis(3));
    let sw = sweep(link, 4000..4300);
    all_completed(&sw, 300);
    assert!(sw.links.reordered > 1000, "{:?}", sw.links);
}

/// Corrupted packets are dropped by the checksums (the simulator fails the run if one
/// passes or a clean one does not) and then recovered like losses.
#[test]
fn corruption_10pct_200_seeds() {
    let sw = sweep(clean().with_corrupt(0.1), 5000..5200);
    all_completed(&sw, 200);
    assert!(sw.links.corrupted > 1000, "{:?}", sw.links);
    assert_eq!(sw.rejected, sw.links.corrupted);
}

/// Everything at once at 5 % loss.
#[test]
fn mixed_faults_300_seeds() {
    let link = clean()
        .with_loss(0.05)
        .with_duplicate(0.05)
        .with_reorder(0.1, Duration::from_millis(30))
        .with_jitter(Duration::from_millis(2))
        .with_corrupt(0.05);
    let sw = sweep(link, 6000..6300);
    all_completed(&sw, 300);
}

/// Everything at once at 20 % loss: agreement, and almost all complete.
#[test]
fn mixed_faults_20pct_loss_200_seeds() {
    let link = clean()
        .with_loss(0.2)
        .with_duplicate(0.1)
        .with_reorder(0.1, Duration::from_millis(30))
        .with_corrupt(0.05);
    let sw = sweep(link, 7000..7200);
    at_least_completed(&sw, 195);
    eprintln!("mixed 20 % verdicts: {:?}", sw.verdicts);
}

/// Same seed, same run: the outcome (states, events, data, timings) is a function of the seed.
#[test]
fn runs_are_deterministic() {
    let link = clean()
        .with_loss(0.2)
        .with_reorder(0.2, Duration::from_millis(20));
    for scn in Scenario::ALL {
        let a = run(scn, 77, link.clone());
        let b = run(scn, 77, link.clone());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{scn:?}");
    }
}

// ---- targeted faults: the runs that legitimately do not complete ----

fn start() -> xdptcp_core::time::Instant {
    // `scenario::pair` starts at 1000 s plus seed nanoseconds.
    xdptcp_core::time::Instant::from_secs(1_000)
}

/// Nothing reaches the server: the client gives up after tcp_syn_retries = 6
/// retransmissions with exponential backoff from 1 s, 1+2+4+...+64 = 127 s (Linux's
/// figure); the server never hears of it.
#[test]
fn blackholed_syns_time_out_after_127_s() {
    let link = clean().with_loss(1.0);
    let o = run_hooked(Scenario::ClientClose, 0, link, TcpConfig::default(), |_| {});
    assert_eq!(o.verdict, Verdict::ConnectTimedOut);
    assert_eq!(o.client.error_at, Some(start() + Duration::from_secs(127)));
    assert_eq!(o.server_segments_in, 0);
}

/// SYNs arrive, every SYN-ACK is lost: the client times out (127 s), the server's half-open
/// connection expires after tcp_synack_retries = 5 (1+2+...+32 = 63 s, then the last wait)
/// without ever being accepted, and neither end holds anything at the end.
#[test]
fn blackholed_syn_acks_leave_nothing_behind() {
    let o = run_hooked(
        Scenario::ServerClose,
        0,
        clean(),
        TcpConfig::default(),
        |sim| {
            if sim.now() == start() {
                let dead = sim.link(Side::Server).config().clone().with_loss(1.0);
                sim.link_mut(Side::Server).set_config(dead);
            }
        },
    );
    assert_eq!(o.verdict, Verdict::ConnectTimedOut);
    assert_eq!(o.client.error_at, Some(start() + Duration::from_secs(127)));
    // 7 SYNs reached the server (the first and 6 retransmissions).
    assert_eq!(o.server_segments_in, 7);
    assert_eq!((o.server.conns_left, o.server.incoming), (0, 0));
}

/// The client gets the SYN-ACK, then the client-to-server direction dies for 100 s: the
/// server's half-open connection expires (SYN-ACK retries), the client keeps retransmitting
/// its request; when the path heals, the request meets the listener, which answers with a
/// RST (RFC 9293 §3.10.7.2), and the client reports a reset. The server never accepted.
#[test]
fn half_open_expiry_is_discovered_by_the_clients_data() {
    let mut healed = false;
    let o = run_hooked(
        Scenario::Handshake,
        0,
        clean(),
        TcpConfig::default(),
        |sim| {
            let t = sim.now() - start();
            let dead = t > Duration::ZERO && t < Duration::from_secs(100);
            if dead && sim.link(Side::Client).config().loss == 0.0 && !healed {
                // First turn after the SYN left: cut the client's direction (the SYN is
                // already in flight and arrives; the ACK and the data do not).
                let cfg = sim.link(Side::Client).config().clone().with_loss(1.0);
                sim.link_mut(Side::Client).set_config(cfg);
            } else if !dead && t > Duration::ZERO && !healed {
                healed = true;
                let cfg = sim.link(Side::Client).config().clone().with_loss(0.0);
                sim.link_mut(Side::Client).set_config(cfg);
            }
        },
    );
    assert_eq!(o.verdict, Verdict::HalfOpenReset, "{o:?}");
    assert_eq!(o.client.error, Some(ConnError::Reset));
    assert_eq!((o.server.incoming, o.server.conns_left), (0, 0));
}

/// Abort with the client's RST lost: the server learns of it from the RST its probe draws
/// from the client's CLOSED port (RFC 9293 §3.10.7.1), [`PROBE_AFTER`] later.
#[test]
fn lost_abort_rst_is_discovered_by_the_next_segment() {
    let mut armed = None;
    let o = run_hooked(Scenario::Abort, 0, clean(), TcpConfig::default(), |sim| {
        // The turn after the client's abort note: drop everything the client sends now.
        let aborted = sim
            .trace()
            .entries()
            .any(|e| e.what == xdptcp_sim::What::App("abort"));
        match armed {
            None if aborted => {
                let cfg = sim.link(Side::Client).config().clone().with_loss(1.0);
                sim.link_mut(Side::Client).set_config(cfg);
                armed = Some(sim.now());
            }
            Some(t) if sim.now() > t => {
                let cfg = sim.link(Side::Client).config().clone().with_loss(0.0);
                sim.link_mut(Side::Client).set_config(cfg);
            }
            _ => {}
        }
    });
    assert_eq!(o.verdict, Verdict::Completed);
    assert_eq!(o.server.error, Some(ConnError::Reset));
    let aborted_at = o.client.error_at.unwrap();
    assert!(
        o.server.error_at.unwrap() >= aborted_at + PROBE_AFTER,
        "server saw the reset before its probe: {o:?}"
    );
}

// ---- option negotiation ----

/// Each seed gives the two ends independently drawn settings: timestamps, window scaling
/// and SACK on or off, MSS 536..=1460, receive buffers 4 KiB..=256 KiB, over a 5 % lossy,
/// reordering link. Every lifecycle path must still complete and agree, whatever the
/// handshake negotiated (RFC 7323 §2.2 / §3.2, RFC 2018: an option is used only when both
/// SYNs carry it).
#[test]
fn mixed_option_sets_200_seeds() {
    use rand::{Rng, SeedableRng};
    let link = clean()
        .with_loss(0.05)
        .with_reorder(0.05, Duration::from_millis(20));
    let mut failures = Vec::new();
    for seed in 8000..8200u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut draw = || TcpConfig {
            timestamps: rng.gen(),
            window_scaling: rng.gen(),
            sack: rng.gen(),
            mss: rng.gen_range(536..=1460),
            rmem: rng.gen_range(4096..=262_144),
            ..TcpConfig::default()
        };
        let cfgs = Configs {
            client: draw(),
            server: draw(),
        };
        for scn in Scenario::ALL {
            set_quiet_traces(!failures.is_empty());
            let both = cfgs.clone();
            let r = catch_unwind(AssertUnwindSafe(|| run_with(scn, seed, link.clone(), both)));
            set_quiet_traces(false);
            match r {
                Ok(o) if matches!(o.verdict, Verdict::Completed | Verdict::Refused) => {}
                Ok(o) => failures.push(format!("{scn:?} seed {seed}: verdict {:?}", o.verdict)),
                Err(_) => failures.push(format!("{scn:?} seed {seed}: {cfgs:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The server's response is never acknowledged (client -> server black-holed once the
/// server has accepted): the server gives up after tcp_retries2 = 15 retransmissions
/// (Linux: ~15 min from a 200 ms RTO) and reports TimedOut; the client, which has nothing
/// outstanding, legitimately stays ESTABLISHED (no keepalive).
#[test]
fn unacknowledged_data_times_out_after_retries2() {
    let o = run_hooked(
        Scenario::Handshake,
        0,
        clean(),
        TcpConfig::default(),
        |sim| {
            if sim.server.state_counts().established == 1 {
                let cfg = sim.link(Side::Client).config().clone().with_loss(1.0);
                sim.link_mut(Side::Client).set_config(cfg);
            }
        },
    );
    assert_eq!(o.verdict, Verdict::RetriesExhausted, "{o:?}");
    assert_eq!(o.server.error, Some(ConnError::TimedOut));
    let took = o.server.error_at.unwrap() - start();
    assert!(
        took > Duration::from_secs(600) && took < Duration::from_secs(2400),
        "gave up after {took:?}"
    );
    assert_eq!(o.client.states.last(), Some(&Established));
    eprintln!("server gave up after {took:?}");
}

// ---- simultaneous open ----

/// RFC 9293 §3.5 figure 8: both ends connect to each other at once (one-port ephemeral
/// ranges make the 4-tuples meet), 10 % loss. Agree: both report `Connected` and end
/// ESTABLISHED; each passed SYN-SENT first; the crossing SYNs took at least one end
/// through SYN-RECEIVED (the other may get the SYN-ACK first and skip it when its own SYN
/// was lost); neither sent a RST.
#[test]
fn simultaneous_open_100_seeds() {
    use std::net::SocketAddrV4;
    use xdptcp_core::tcp::conn::Event;
    use xdptcp_core::tcp::endpoint::{Endpoint, EndpointEvent, EndpointSecrets};
    use xdptcp_sim::{scenario::sim_config, Sim, CLIENT_IP, SERVER_IP};
    for seed in 0..100u64 {
        let ep = |s, port| {
            Endpoint::new(
                TcpConfig::default(),
                EndpointSecrets::from_seed(s),
                port..=port,
            )
        };
        let link = clean().with_loss(0.1);
        let mut sim = Sim::new(
            sim_config(seed, link),
            start(),
            ep(seed * 2, 40000),
            ep(seed * 2 + 1, 50000),
        );
        sim.set_label(format!("simultaneous open seed {seed}"));
        let now = sim.now();
        let a = sim
            .client
            .connect(now, CLIENT_IP, SocketAddrV4::new(SERVER_IP, 50000))
            .unwrap();
        let b = sim
            .server
            .connect(now, SERVER_IP, SocketAddrV4::new(CLIENT_IP, 40000))
            .unwrap();
        let (mut events, mut states) = ([vec![], vec![]], [vec![], vec![]]);
        sim.drive(|sim| {
            let mut acted = false;
            for (i, id) in [(0, a), (1, b)] {
                let ep = if i == 0 {
                    &mut sim.client
                } else {
                    &mut sim.server
                };
                while let Some(e) = ep.poll_event() {
                    assert_eq!(e, EndpointEvent::Conn(id, Event::Connected), "seed {seed}");
                    events[i].push(e);
                    acted = true;
                }
                let st = ep.state(id).unwrap();
                if states[i].last() != Some(&st) {
                    states[i].push(st);
                }
            }
            acted
        });
        for i in 0..2 {
            assert_eq!(events[i].len(), 1, "seed {seed}: {events:?}");
            assert_eq!(states[i].first(), Some(&SynSent), "seed {seed}: {states:?}");
            assert_eq!(
                states[i].last(),
                Some(&Established),
                "seed {seed}: {states:?}"
            );
        }
        assert!(
            states.iter().any(|s| s.contains(&SynReceived)),
            "seed {seed}: {states:?}"
        );
        assert_eq!(sim.stats().rsts, [0, 0], "seed {seed}");
    }
}

// ---- replay ----

/// Replays one run with its whole trace, e.g. a failure reported by a sweep:
/// `SIM_SCENARIO=ClientClose SIM_SEED=2005 SIM_LOSS=0.2 cargo test --release -p xdptcp
/// --test sim_lifecycle replay -- --ignored --nocapture` (also SIM_DUP, SIM_REORDER with
/// SIM_REORDER_MS, SIM_CORRUPT, SIM_JITTER_MS; unset = 0).
#[test]
#[ignore = "manual: replays the run named by SIM_* environment variables"]
fn replay() {
    let var = |k: &str| std::env::var(k).ok();
    let num = |k: &str| var(k).map_or(0.0, |v| v.parse::<f64>().expect(k));
    let name = var("SIM_SCENARIO").expect("SIM_SCENARIO (e.g. ClientClose)");
    let scn = *Scenario::ALL
        .iter()
        .find(|s| format!("{s:?}") == name)
        .expect("unknown SIM_SCENARIO");
    let seed = num("SIM_SEED") as u64;
    let link = clean()
        .with_loss(num("SIM_LOSS"))
        .with_duplicate(num("SIM_DUP"))
        .with_reorder(
            num("SIM_REORDER"),
            Duration::from_millis(var("SIM_REORDER_MS").map_or(30, |v| v.parse().unwrap())),
        )
        .with_corrupt(num("SIM_CORRUPT"))
        .with_jitter(Duration::from_millis(num("SIM_JITTER_MS") as u64));
    xdptcp_sim::set_full_trace(Some(1_000_000));
    let o = run(scn, seed, link);
    xdptcp_sim::set_full_trace(None);
    eprintln!("{o:?}");
}

// ---- a new connection on a 4-tuple in TIME-WAIT ----

/// The server closes first (so it holds the TIME-WAIT), the client (one-port ephemeral
/// range, so the 4-tuple repeats) reconnects at once. RFC 6191 / RFC 9293 §3.10.7.4: the new
/// SYN has a newer timestamp and a higher ISN (RFC 6528's clock), so the server's TIME-WAIT
/// gives way and the second connection completes. Both connections must see all their data
/// and end-of-stream; 5 % loss.
#[test]
fn reconnect_into_server_time_wait_100_seeds() {
    use std::net::SocketAddrV4;
    use xdptcp_core::tcp::conn::Event;
    use xdptcp_core::tcp::endpoint::{ConnId, Endpoint, EndpointEvent, EndpointSecrets};
    use xdptcp_sim::{scenario::sim_config, Sim, CLIENT_IP, SERVER_IP};
    for seed in 0..100u64 {
        let cfg = TcpConfig::default();
        let c = Endpoint::new(
            cfg.clone(),
            EndpointSecrets::from_seed(seed * 2),
            40000..=40000,
        );
        let s = Endpoint::new(cfg, EndpointSecrets::from_seed(seed * 2 + 1), 50000..=50999);
        let link = clean().with_loss(0.05);
        let mut sim = Sim::new(sim_config(seed, link), start(), c, s);
        sim.set_label(format!("reconnect seed {seed}"));
        let l = sim.server.listen(SERVER_IP, 80, 4).unwrap();
        for round in 0..2 {
            let now = sim.now();
            let cid = sim
                .client
                .connect(now, CLIENT_IP, SocketAddrV4::new(SERVER_IP, 80))
                .unwrap_or_else(|e| panic!("seed {seed} round {round}: connect: {e}"));
            let mut sid: Option<ConnId> = None;
            let (mut c_eof, mut s_closed, mut c_closed) = (false, false, false);
            let mut got = Vec::new();
            let mut app = |sim: &mut Sim<Endpoint>| {
                let now = sim.now();
                while let Some(e) = sim.server.poll_event() {
                    if let EndpointEvent::Incoming(_) = e {
                        let id = sim.server.accept(l).expect("accept");
                        // Respond and close at once: the server is the active closer.
                        assert_eq!(sim.server.send(now, id, b"response"), Ok(8));
                        sim.server.close(now, id).unwrap();
                        sid = Some(id);
                        s_closed = true;
                    }
                }
                while let Some(e) = sim.client.poll_event() {
                    if e == EndpointEvent::Conn(cid, Event::PeerFin) {
                        c_eof = true;
                    }
                }
                let mut buf = [0u8; 64];
                let n = sim.client.recv(cid, &mut buf).unwrap_or(0);
                got.extend_from_slice(&buf[..n]);
                if c_eof && !c_closed {
                    sim.client.close(now, cid).unwrap();
                    c_closed = true;
                }
                c_closed
            };
            // Round 0 stops as soon as the client's connection is gone (LAST-ACK -> CLOSED:
            // the server has just entered TIME-WAIT); round 1 runs to the end.
            loop {
                let done = app(&mut sim) && sim.client.state(cid).is_none();
                if round == 0 && done || !sim.step() {
                    break;
                }
            }
            assert!(
                s_closed && sid.is_some(),
                "seed {seed} round {round}: never accepted"
            );
            assert_eq!(got, b"response", "seed {seed} round {round}");
            assert!(c_eof, "seed {seed} round {round}: no end-of-stream");
            if round == 0 {
                assert_eq!(sim.server.time_wait_count(), 1, "seed {seed}");
            }
        }
        // The second SYN reopened the 4-tuple in TIME-WAIT.
        let st = *sim.server.stats();
        assert_eq!(
            (st.tw_reopened, st.conns_opened),
            (1, 2),
            "seed {seed}: {st:?}"
        );
    }
}

/// The client closes first and holds the TIME-WAIT; with a one-port ephemeral range its next
/// connect needs that 4-tuple. tcp_tw_reuse = 2 (Linux's default, loopback only): no port
/// (EADDRNOTAVAIL). tcp_tw_reuse = 1 with timestamps, at least 1 s after the last segment:
/// the record is reused (Linux tcp_twsk_unique) and the new connection completes.
#[test]
fn client_time_wait_reuse_follows_tcp_tw_reuse() {
    use std::net::SocketAddrV4;
    use xdptcp_core::tcp::endpoint::{ConnectError, Endpoint, EndpointEvent, EndpointSecrets};
    use xdptcp_core::tcp::TwReuse;
    use xdptcp_sim::{scenario::sim_config, Sim, CLIENT_IP, SERVER_IP};
    for (tw_reuse, seed) in [
        (TwReuse::LoopbackOnly, 1u64),
        (TwReuse::On, 2),
        (TwReuse::On, 3),
        (TwReuse::On, 4),
    ] {
        let cfg = TcpConfig {
            tw_reuse,
            ..TcpConfig::default()
        };
        let c = Endpoint::new(
            cfg.clone(),
            EndpointSecrets::from_seed(seed * 2),
            40000..=40000,
        );
        let s = Endpoint::new(cfg, EndpointSecrets::from_seed(seed * 2 + 1), 50000..=50999);
        let mut sim = Sim::new(sim_config(seed, clean()), start(), c, s);
        let l = sim.server.listen(SERVER_IP, 80, 4).unwrap();
        let remote = SocketAddrV4::new(SERVER_IP, 80);
        let now = sim.now();
        let first = sim.client.connect(now, CLIENT_IP, remote).unwrap();
        // Handshake, then the client closes; the server closes on end-of-stream.
        let mut closed = false;
        sim.run_until(|sim| {
            let now = sim.now();
            while let Some(e) = sim.server.poll_event() {
                match e {
                    EndpointEvent::Incoming(_) => {
                        sim.server.accept(l);
                    }
                    EndpointEvent::Conn(id, xdptcp_core::tcp::conn::Event::PeerFin) => {
                        sim.server.close(now, id).unwrap();
                    }
                    _ => {}
                }
            }
            while let Some(e) = sim.client.poll_event() {
                if e == EndpointEvent::Conn(first, xdptcp_core::tcp::conn::Event::Connected) {
                    sim.client.close(now, first).unwrap();
                    closed = true;
                }
            }
            closed && sim.client.time_wait_count() == 1 && sim.server.connection_count() == 0
        });
        assert_eq!(sim.client.time_wait_count(), 1, "seed {seed}");
        // Linux tcp_tw_reuse_delay: 1 s after the last timestamp seen.
        let later = sim.now() + Duration::from_millis(1500);
        sim.run_to(later);
        let r = sim.client.connect(later, CLIENT_IP, remote);
        if tw_reuse == TwReuse::LoopbackOnly {
            assert_eq!(r, Err(ConnectError::NoPorts), "seed {seed}");
            continue;
        }
        let second = r.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let ok = sim.run_until(|sim| {
            while let Some(e) = sim.server.poll_event() {
                if let EndpointEvent::Incoming(_) = e {
                    sim.server.accept(l);
                }
            }
            sim.client.state(second) == Some(Established)
        });
        assert!(ok, "seed {seed}: second connection not established");
        assert_eq!(sim.client.stats().tw_reused, 1, "seed {seed}");
    }
}
