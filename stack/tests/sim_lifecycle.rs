//! Issue 3 item 9: the connection lifecycle between two endpoints over the deterministic
//! simulated network (stack/src/sim), every scenario under 0 %, 5 % and 20 % loss and with
//! duplication, reordering and corruption, over many seeds. Each run checks that both ends
//! agree on the outcome (what "agree" means per scenario: `xdptcp::sim::scenario::Scenario`
//! and `Verdict` docs; the checks: `Outcome::check`). A failing run panics with its
//! scenario, seed and link settings, and prints the packet trace.
//!
//! Run: `cargo test --release -p xdptcp --test sim_lifecycle`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use xdptcp::sim::scenario::{run, Outcome, Scenario, Verdict};
use xdptcp::sim::{set_quiet_traces, LinkConfig};
use xdptcp::tcp::conn::State::{self, *};
use xdptcp::time::Duration;

/// Runs every scenario for every seed; collects verdict counts and failures (the trace of
/// the first failure per scenario is printed, the rest are listed by seed).
fn sweep(link: LinkConfig, seeds: std::ops::Range<u64>) -> BTreeMap<String, u32> {
    let mut verdicts = BTreeMap::new();
    let mut failures = Vec::new();
    for scn in Scenario::ALL {
        let mut failed = false;
        for seed in seeds.clone() {
            set_quiet_traces(failed);
            let r = catch_unwind(AssertUnwindSafe(|| run(scn, seed, link.clone())));
            set_quiet_traces(false);
            match r {
                Ok(o) => *verdicts.entry(format!("{scn:?}/{:?}", o.verdict)).or_insert(0) += 1,
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
    verdicts
}

fn first_line(s: &str) -> &str {
    let s = s.split("\n  client:").next().unwrap_or(s);
    &s[..s.len().min(400)]
}

/// Every run ran its whole course: connections completed (or, for `Refused`, were refused).
fn all_completed(v: &BTreeMap<String, u32>, runs_per_scenario: u32) {
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
    let cases: [(Scenario, &[State], &[State]); 8] = [
        (Scenario::Handshake, &[SynSent, Established], &[Established]),
        (
            Scenario::ClientClose,
            &[SynSent, Established, FinWait1, FinWait2, TimeWait, Closed],
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
    assert_eq!(t1.unwrap() - t0, o.msl * 2);
    assert!(o.elapsed < o.msl * 2 + Duration::from_secs(1), "{:?}", o.elapsed);
}

/// A refused connect takes one round trip: SYN, RST, Error(Refused).
#[test]
fn clean_link_refused_in_one_round_trip() {
    let o = run(Scenario::Refused, 1, clean());
    assert_eq!(o.verdict, Verdict::Refused);
    assert_eq!(o.server_rst_closed, 1);
    let start = xdptcp::time::Instant::from_secs(1_000) + Duration::from_nanos(1);
    assert_eq!(o.client.error_at, Some(start + Duration::from_millis(20)));
}

// ---- sweeps ----

#[test]
fn no_loss_200_seeds() {
    let v = sweep(clean(), 0..200);
    all_completed(&v, 200);
}

/// At 5 % loss a connect fails only if 7 SYN rounds in a row fail (p ≈ 0.1^7): every run
/// must complete.
#[test]
fn loss_5pct_200_seeds() {
    let v = sweep(clean().with_loss(0.05), 1000..1200);
    all_completed(&v, 200);
}

/// At 20 % loss a SYN round fails with p = 1 - 0.8^2 = 0.36, so SYN retries can run out
/// (0.36^7 ≈ 0.08 % per run) and a half-open server connection can expire: such runs must
/// still agree (`Verdict`), and most runs complete.
#[test]
fn loss_20pct_100_seeds() {
    let v = sweep(clean().with_loss(0.2), 2000..2100);
    for scn in Scenario::ALL {
        let want = if scn == Scenario::Refused {
            Verdict::Refused
        } else {
            Verdict::Completed
        };
        let n = v.get(&format!("{scn:?}/{want:?}")).copied().unwrap_or(0);
        assert!(n >= 95, "{scn:?}: only {n}/100 completed: {v:?}");
    }
    eprintln!("20 % loss verdicts: {v:?}");
}

#[test]
fn duplication_10pct_200_seeds() {
    let v = sweep(clean().with_duplicate(0.1), 3000..3200);
    all_completed(&v, 200);
}

/// 20 % of packets held back up to 50 ms (5 round trips' worth of overtaking) plus 3 ms
/// jitter on everything.
#[test]
fn reordering_200_seeds() {
    let link = clean()
        .with_reorder(0.2, Duration::from_millis(50))
        .with_jitter(Duration::from_millis(3));
    let v = sweep(link, 4000..4200);
    all_completed(&v, 200);
}

/// Corrupted packets are dropped by the checksums (the simulator fails the run if one
/// passes) and then recovered like losses.
#[test]
fn corruption_10pct_100_seeds() {
    let v = sweep(clean().with_corrupt(0.1), 5000..5100);
    all_completed(&v, 100);
}

/// Everything at once at 5 % loss.
#[test]
fn mixed_faults_100_seeds() {
    let link = clean()
        .with_loss(0.05)
        .with_duplicate(0.05)
        .with_reorder(0.1, Duration::from_millis(30))
        .with_jitter(Duration::from_millis(2))
        .with_corrupt(0.05);
    let v = sweep(link, 6000..6100);
    all_completed(&v, 100);
}

/// Everything at once at 20 % loss: agreement only.
#[test]
fn mixed_faults_20pct_loss_100_seeds() {
    let link = clean()
        .with_loss(0.2)
        .with_duplicate(0.1)
        .with_reorder(0.1, Duration::from_millis(30))
        .with_corrupt(0.05);
    let v = sweep(link, 7000..7100);
    eprintln!("mixed 20 % verdicts: {v:?}");
}

/// Same seed, same run: the outcome (states, events, data, timings) is a function of the seed.
#[test]
fn runs_are_deterministic() {
    let link = clean().with_loss(0.2).with_reorder(0.2, Duration::from_millis(20));
    for scn in Scenario::ALL {
        let a = run(scn, 77, link.clone());
        let b = run(scn, 77, link.clone());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{scn:?}");
    }
}
