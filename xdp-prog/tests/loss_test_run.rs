//! Runs the loaded (not attached) loss injector on hand-built frames with BPF_PROG_TEST_RUN
//! and checks the tc action and counters exactly. Needs root.

use xdptcp_xdp::loss::{LossConfig, LossCounters, LossInjector};

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("BPF tests need root: run `sudo -E cargo test -p xdptcp-xdp`");
    }
}

fn load(cfg: LossConfig) -> LossInjector {
    require_root();
    LossInjector::load(cfg).expect("load the loss program")
}

/// Ethernet + IPv4 (protocol `proto`) + 20-byte L4 header starting with the two ports.
fn ipv4(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[198, 18, 0, 2]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 1]);
    f.extend_from_slice(&ip);
    let mut l4 = [0u8; 20];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[12] = 0x50;
    f.extend_from_slice(&l4);
    f
}

/// Ethernet + IPv6 (next header TCP) + TCP header.
fn ipv6_tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
    let mut ip = [0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&20u16.to_be_bytes());
    ip[6] = 6;
    ip[7] = 64;
    f.extend_from_slice(&ip);
    let mut l4 = [0u8; 20];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[12] = 0x50;
    f.extend_from_slice(&l4);
    f
}

fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x06]);
    f.extend_from_slice(&[0u8; 28]);
    f
}

#[test]
fn zero_config_passes_everything_and_counts() {
    let inj = load(LossConfig::default());
    for f in [ipv4(6, 40000, 8080), ipv6_tcp(40000, 8080)] {
        assert_eq!(inj.test_run(&f).unwrap(), TC_ACT_OK);
    }
    for f in [ipv4(17, 40000, 8080), arp()] {
        assert_eq!(inj.test_run(&f).unwrap(), TC_ACT_OK);
    }
    let c = inj.counters().unwrap();
    assert_eq!(
        c,
        LossCounters {
            seen: 2,
            dropped: 0,
            duplicated: 0,
            other: 2
        }
    );
}

#[test]
fn full_ppm_drops_all_tcp_and_nothing_else() {
    let inj = load(LossConfig {
        drop_ppm: 1_000_000,
        ..Default::default()
    });
    for _ in 0..50 {
        assert_eq!(inj.test_run(&ipv4(6, 1, 2)).unwrap(), TC_ACT_SHOT);
        assert_eq!(inj.test_run(&ipv6_tcp(1, 2)).unwrap(), TC_ACT_SHOT);
        assert_eq!(inj.test_run(&ipv4(17, 1, 2)).unwrap(), TC_ACT_OK);
    }
    let c = inj.counters().unwrap();
    assert_eq!((c.seen, c.dropped, c.other), (100, 100, 50));
}

#[test]
fn every_nth_drops_exactly_the_nth_and_set_restarts_the_sequence() {
    let mut inj = load(LossConfig {
        every_nth: Some(4),
        drop_ppm: 1_000_000, // ignored in deterministic mode
        ..Default::default()
    });
    let actions: Vec<u32> = (0..12)
        .map(|_| inj.test_run(&ipv4(6, 40000, 8080)).unwrap())
        .collect();
    let shot = |i: usize| if i % 4 == 3 { TC_ACT_SHOT } else { TC_ACT_OK };
    assert_eq!(actions, (0..12).map(shot).collect::<Vec<_>>());
    // Two more into the sequence, then set(): the count restarts at 1.
    inj.test_run(&ipv4(6, 40000, 8080)).unwrap();
    inj.test_run(&ipv4(6, 40000, 8080)).unwrap();
    inj.set(LossConfig {
        every_nth: Some(3),
        ..Default::default()
    })
    .unwrap();
    let actions: Vec<u32> = (0..6)
        .map(|_| inj.test_run(&ipv4(6, 40000, 8080)).unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            TC_ACT_OK,
            TC_ACT_OK,
            TC_ACT_SHOT,
            TC_ACT_OK,
            TC_ACT_OK,
            TC_ACT_SHOT
        ]
    );
    let c = inj.counters().unwrap();
    assert_eq!((c.seen, c.dropped), (20, 5));
}

#[test]
fn port_filter_matches_source_or_destination_only() {
    let inj = load(LossConfig {
        drop_ppm: 1_000_000,
        port: Some(8080),
        ..Default::default()
    });
    assert_eq!(inj.test_run(&ipv4(6, 40000, 8080)).unwrap(), TC_ACT_SHOT);
    assert_eq!(inj.test_run(&ipv4(6, 8080, 40000)).unwrap(), TC_ACT_SHOT);
    assert_eq!(inj.test_run(&ipv6_tcp(8080, 1)).unwrap(), TC_ACT_SHOT);
    assert_eq!(inj.test_run(&ipv4(6, 40000, 9090)).unwrap(), TC_ACT_OK);
    // UDP on the same port is not TCP.
    assert_eq!(inj.test_run(&ipv4(17, 40000, 8080)).unwrap(), TC_ACT_OK);
    let c = inj.counters().unwrap();
    assert_eq!((c.seen, c.dropped, c.other), (3, 3, 2));
}

#[test]
fn random_mode_drops_about_the_configured_share() {
    let inj = load(LossConfig {
        drop_ppm: 250_000,
        ..Default::default()
    });
    let n = 4000;
    let dropped = (0..n)
        .filter(|_| inj.test_run(&ipv4(6, 1, 2)).unwrap() == TC_ACT_SHOT)
        .count();
    // Binomial(4000, 0.25): mean 1000, sd ~27; +-200 is > 7 sd.
    assert!((800..=1200).contains(&dropped), "dropped {dropped} of {n}");
    assert_eq!(inj.counters().unwrap().dropped, dropped as u64);
}

#[test]
fn every_nth_zero_is_an_error() {
    require_root();
    let err = LossInjector::load(LossConfig {
        every_nth: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "every_nth must be at least 1");
}

#[test]
fn attach_to_missing_interface_is_a_clear_error() {
    require_root();
    let err = LossInjector::attach_egress("xt-nonexistent0", LossConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("no such network interface"),
        "{err}"
    );
}
