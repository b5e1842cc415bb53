//! Listener decisions with exact counters (Linux tcp_conn_request / tcp_check_req semantics).

use super::*;

type L = Listener<u32, &'static str, u32>;

/// `syncookies` as the sysctl value (0, 1, 2).
fn cfg(syncookies: u8, max_syn_backlog: usize) -> TcpConfig {
    TcpConfig {
        syncookies: SynCookieMode::from_sysctl(syncookies.into()).unwrap(),
        max_syn_backlog,
        ..TcpConfig::default()
    }
}

/// A listener with `backlog`, `half_open` queued requests and `established` accepted ones.
fn listener(c: &TcpConfig, backlog: usize, half_open: u32, established: u32) -> L {
    let mut l = L::new(backlog, c);
    for k in 0..half_open {
        l.syn_queue.insert(k, "req").unwrap();
    }
    for k in 0..established {
        l.accept_queue.push(1000 + k).unwrap();
    }
    l
}

const NOW: Instant = Instant::from_secs(100);

#[test]
fn mode1_queues_until_full_then_cookies() {
    let c = cfg(1, 4096);
    let mut l = listener(&c, 4, 3, 0);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Queue);
    assert_eq!(l.stats, ListenerStats::default());
    l.syn_queue.insert(3, "req").unwrap();
    // SYN queue full at the backlog (qlen >= max backlog).
    assert!(l.syn_queue_full());
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Cookie);
    let want = ListenerStats {
        syn_queue_full_cookies: 1,
        cookies_sent: 1,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
}

#[test]
fn mode2_always_cookies() {
    let c = cfg(2, 4096);
    let mut l = listener(&c, 128, 0, 0);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Cookie);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Cookie);
    let want = ListenerStats {
        syn_queue_full_cookies: 2,
        cookies_sent: 2,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
    assert!(l.syn_queue.is_empty());
}

#[test]
fn mode0_drops_when_full() {
    let c = cfg(0, 4096);
    let mut l = listener(&c, 2, 2, 0);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Drop);
    let want = ListenerStats {
        syn_queue_full_drops: 1,
        listen_drops: 1,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
    assert!(!l.may_be_cookie_ack(&c, NOW, Duration::from_secs(128)));
}

#[test]
fn mode0_keeps_last_quarter_of_max_syn_backlog() {
    // tcp_max_syn_backlog = 8: the last 2 slots are for "proven" peers (none here).
    let c = cfg(0, 8);
    let mut l = listener(&c, 100, 6, 0);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Queue); // 2 free: not < 2
    l.syn_queue.insert(6, "req").unwrap();
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Drop); // 1 free
    let want = ListenerStats {
        listen_drops: 1,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
    // Mode 1 does not reserve the quarter.
    let c1 = cfg(1, 8);
    assert_eq!(l.on_syn(&c1, NOW, false), SynDecision::Queue);
}

#[test]
fn syn_queue_bounded_by_max_syn_backlog_in_memory() {
    // backlog 100 but tcp_max_syn_backlog 4: full at 4, cookies take over.
    let c = cfg(1, 4);
    let mut l = listener(&c, 100, 4, 0);
    assert_eq!(l.syn_queue.capacity(), 4);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Cookie);
}

#[test]
fn accept_queue_full_drops_syn_even_with_cookies() {
    // backlog 1 holds 2 established connections (Linux: full when len > max).
    for mode in [0u8, 1] {
        let c = cfg(mode, 4096);
        let mut l = listener(&c, 1, 0, 2);
        assert!(l.accept_queue.is_full());
        assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Drop);
        let want = ListenerStats {
            listen_overflows: 1,
            listen_drops: 1,
            ..Default::default()
        };
        assert_eq!(l.stats, want, "mode {mode}");
    }
    // Mode 2: counted as going to cookies first, then dropped for the overflow, nothing sent.
    let c = cfg(2, 4096);
    let mut l = listener(&c, 1, 0, 2);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Drop);
    let want = ListenerStats {
        listen_overflows: 1,
        listen_drops: 1,
        syn_queue_full_cookies: 1,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
    assert!(!l.may_be_cookie_ack(&c, NOW, Duration::from_secs(128)));
}

#[test]
fn time_wait_syn_bypasses_full_syn_queue() {
    // RFC 6191 reuse of a TIME-WAIT tuple: queued even when the queue is "full" at the backlog.
    let c = cfg(0, 16);
    let mut l = listener(&c, 2, 2, 0);
    assert_eq!(l.on_syn(&c, NOW, true), SynDecision::Queue);
    assert_eq!(l.stats, ListenerStats::default());
    // ... but never past the memory bound (tcp_max_syn_backlog): then like any SYN.
    let mut l = listener(&c, 100, 16, 0);
    assert_eq!(l.on_syn(&c, NOW, true), SynDecision::Drop);
    assert_eq!(l.stats.syn_queue_full_drops, 1);
}

#[test]
fn backlog_zero_still_accepts_one_with_cookies() {
    // listen(fd, 0): SYN queue always "full" (qlen >= 0), accept queue holds one.
    let c = cfg(1, 4096);
    let mut l = listener(&c, 0, 0, 0);
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Cookie);
    assert_eq!(l.on_handshake_ack(&c, true), AckDecision::Accept);
    l.accept_queue.push(1).unwrap();
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Drop);
    assert_eq!(l.stats.listen_overflows, 1);
}

#[test]
fn cookie_acks_tried_only_after_recent_cookie() {
    let c = cfg(2, 4096);
    let mut l = listener(&c, 8, 0, 0);
    let validity = Duration::from_secs(128);
    assert!(!l.may_be_cookie_ack(&c, NOW, validity));
    assert_eq!(l.on_syn(&c, NOW, false), SynDecision::Cookie);
    assert!(l.may_be_cookie_ack(&c, NOW + Duration::from_secs(127), validity));
    assert!(!l.may_be_cookie_ack(&c, NOW + validity, validity));
    assert!(!l.may_be_cookie_ack(&cfg(0, 4096), NOW, validity));
}

#[test]
fn third_ack_moves_request_to_accept_queue() {
    let c = cfg(1, 4096);
    let mut l = listener(&c, 2, 2, 0);
    assert_eq!(
        l.complete(&1, &c, |v| if v == "req" { 11 } else { 0 }),
        Some(AckDecision::Accept)
    );
    assert_eq!(l.syn_queue.len(), 1);
    assert!(!l.syn_queue.contains(&1));
    assert_eq!(l.complete(&7, &c, |_| 0), None);
    assert_eq!(l.accept(), Some(11));
    assert_eq!(l.accept(), None);
    assert_eq!(l.stats, ListenerStats::default());
}

#[test]
fn third_ack_on_full_accept_queue_is_dropped_and_request_kept() {
    let c = cfg(1, 4096);
    let mut l = listener(&c, 1, 1, 2);
    assert_eq!(l.complete(&0, &c, |_| 99), Some(AckDecision::Drop));
    assert!(
        l.syn_queue.contains(&0),
        "request stays for the retransmitted SYN-ACK/ACK"
    );
    assert_eq!(l.accept_queue.len(), 2);
    let want = ListenerStats {
        listen_overflows: 1,
        listen_drops: 1,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
    // After accept() frees a slot, the retried ACK completes.
    assert_eq!(l.accept(), Some(1000));
    assert_eq!(l.complete(&0, &c, |_| 99), Some(AckDecision::Accept));
    assert_eq!(
        (l.accept(), l.accept(), l.accept()),
        (Some(1001), Some(99), None)
    );
}

#[test]
fn abort_on_overflow_resets_queued_but_not_cookie_handshakes() {
    let c = TcpConfig {
        abort_on_overflow: true,
        ..TcpConfig::default()
    };
    let mut l = listener(&c, 1, 1, 2);
    assert_eq!(l.complete(&0, &c, |_| 99), Some(AckDecision::Reset));
    assert!(l.syn_queue.is_empty());
    assert_eq!(l.on_handshake_ack(&c, true), AckDecision::Drop);
    let want = ListenerStats {
        listen_overflows: 2,
        listen_drops: 2,
        overflow_resets: 1,
        ..Default::default()
    };
    assert_eq!(l.stats, want);
}
