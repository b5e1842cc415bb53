//! The endpoint over IPv6: exact segments of a passive handshake and of TIME-WAIT, MSS =
//! MTU - 60, SYN cookies over the IPv6 tuple, and the two families kept apart.

use std::net::{Ipv6Addr, SocketAddrV6};

use super::*;
use crate::tcp::isn::IsnGenerator;

const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

fn v6_tuple(local: Ipv6Addr, lport: u16, remote: Ipv6Addr, rport: u16) -> FourTuple {
    FourTuple::new_v6(
        SocketAddrV6::new(local, lport, 0, 0),
        SocketAddrV6::new(remote, rport, 0, 0),
    )
}

/// A Linux-like SYN from A6:40000 to B6:80.
fn linux_syn() -> TcpRepr<'static> {
    TcpRepr {
        options: TcpOptions {
            mss: Some(1440),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((1000, 0)),
            ..TcpOptions::default()
        },
        window: 64800,
        ..tcp(40000, 80, 7000, 0, TcpFlags::SYN)
    }
}

/// RFC 9293 §3.10.7.2 LISTEN over IPv6: the SYN-ACK is <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>
/// with ISS = RFC 6528 F over the IPv6 4-tuple, our MSS 1440 (MTU 1500 - 60, `tcp.mss` being
/// the IPv4 figure 1460), from B6 to A6; the ACK completes it; B closes first and keeps
/// TIME-WAIT, where a retransmitted FIN is ACKed <SEQ=SND.NXT><ACK=RCV.NXT> (§3.10.7.4) and
/// a RST ignored (RFC 1337).
#[test]
fn ipv6_passive_handshake_and_time_wait_exact_segments() {
    let seed = 2;
    let mut b = ep(TcpConfig::default(), seed, 50_000..=50_999);
    let l = b.listen(Ipv6Addr::UNSPECIFIED, 80, 16).unwrap();
    let now = T0;
    b.on_segment(now, A6, B6, &linux_syn());
    let out = flush(&mut b, now);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].src, out[0].dst), (B6.into(), A6.into()));
    let tuple = v6_tuple(B6, 80, A6, 40000);
    let isn = IsnGenerator::new(EndpointSecrets::from_seed(seed).isn);
    let iss = isn.isn(&tuple, now);
    let ts_off = isn.ts_offset(B6, A6);
    let tsval = (now.as_millis() as u32).wrapping_add(ts_off);
    let shift = Negotiated::our_shift(b.config());
    assert_eq!(
        out[0].repr(),
        TcpRepr {
            src_port: 80,
            dst_port: 40000,
            seq: iss,
            ack: SeqNum(7001),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 0xffff,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1440),
                window_scale: Some(shift),
                sack_permitted: true,
                timestamp: Some((tsval, 1000)),
                ..TcpOptions::default()
            },
            payload: &[],
        }
    );
    // Third segment: ESTABLISHED, accepted; the MSS agreed is 1440 - 12 of timestamps.
    let mut ack = tcp(40000, 80, 7001, (iss + 1u32).0, TcpFlags::ACK);
    ack.options.timestamp = Some((1001, tsval));
    ack.window = 507;
    b.on_segment(now, A6, B6, &ack);
    assert_eq!(events(&mut b), [EndpointEvent::Incoming(l)]);
    let c = b.accept(l).unwrap();
    assert_eq!(b.state(c), Some(State::Established));
    assert_eq!(b.info(c).unwrap().tuple, tuple);
    assert_eq!(b.info(c).unwrap().negotiated.mss, 1440);
    // The same ports over IPv4 are another connection: the listener is IPv6 only (`::`).
    let v4 = Ipv4Addr::new(198, 18, 0, 1);
    b.on_segment(now, v4, Ipv4Addr::new(198, 18, 0, 2), &ack);
    let out = flush(&mut b, now);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].dst, out[0].flags()), (v4.into(), TcpFlags::RST));
    assert_eq!(b.state(c), Some(State::Established));
    // B closes first: FIN <SEQ=ISS+1><ACK=7001>.
    b.close(now, c).unwrap();
    let out = flush(&mut b, now);
    assert_eq!(out.len(), 1);
    let fin = out[0].repr();
    assert_eq!(
        (fin.flags, fin.seq, fin.ack),
        (TcpFlags::FIN | TcpFlags::ACK, iss + 1u32, SeqNum(7001))
    );
    // A's ACK of the FIN, then A's FIN: TIME-WAIT, one record, the connection freed.
    let t1 = now + Duration::from_millis(10);
    let mut a_ack = tcp(40000, 80, 7001, (iss + 2u32).0, TcpFlags::ACK);
    a_ack.options.timestamp = Some((1011, tsval));
    b.on_segment(t1, A6, B6, &a_ack);
    let mut a_fin = tcp(
        40000,
        80,
        7001,
        (iss + 2u32).0,
        TcpFlags::FIN | TcpFlags::ACK,
    );
    a_fin.options.timestamp = Some((1012, tsval));
    b.on_segment(t1, A6, B6, &a_fin);
    let out = flush(&mut b, t1);
    assert_eq!(out.len(), 1);
    let tsval1 = (t1.as_millis() as u32).wrapping_add(ts_off);
    let last_ack = TcpRepr {
        options: TcpOptions {
            timestamp: Some((tsval1, 1012)),
            ..TcpOptions::default()
        },
        window: out[0].repr().window,
        ..tcp(80, 40000, (iss + 2u32).0, 7002, TcpFlags::ACK)
    };
    assert_eq!(out[0].repr(), last_ack);
    assert_eq!((out[0].src, out[0].dst), (B6.into(), A6.into()));
    assert_eq!((b.connection_count(), b.time_wait_count()), (0, 1));
    // The FIN again, 1 s later: the record ACKs it, from B6 to A6, with its timestamps.
    let t2 = t1 + Duration::from_secs(1);
    a_fin.options.timestamp = Some((2012, tsval));
    b.on_segment(t2, A6, B6, &a_fin);
    let out = flush(&mut b, t2);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].src, out[0].dst), (B6.into(), A6.into()));
    let r = out[0].repr();
    assert_eq!(
        (r.src_port, r.dst_port, r.flags, r.seq, r.ack),
        (80, 40000, TcpFlags::ACK, iss + 2u32, SeqNum(7002))
    );
    assert_eq!(
        r.options.timestamp,
        Some(((t2.as_millis() as u32).wrapping_add(ts_off), 2012))
    );
    // RFC 1337: a RST does not end it.
    b.on_segment(t2, A6, B6, &tcp(40000, 80, 7002, 0, TcpFlags::RST));
    assert!(flush(&mut b, t2).is_empty());
    assert_eq!((b.time_wait_count(), b.stats().tw_rst_ignored), (1, 1));
    // Expired after 2*MSL (from the restart).
    b.on_timeout(t2 + b.config().time_wait());
    assert_eq!(b.time_wait_count(), 0);
}

/// Two endpoints over IPv6: an active open offers MSS 1440 and a port from the shared
/// ephemeral range; data both ways; with `tcp_syncookies = 2` the handshake completes from
/// a cookie over the IPv6 tuple (MSS from the IPv6 table).
#[test]
fn ipv6_active_open_data_and_cookies() {
    for cookies in [SynCookieMode::Never, SynCookieMode::Always] {
        let cb = TcpConfig {
            syncookies: cookies,
            ..TcpConfig::default()
        };
        let mut p = Pair::new(TcpConfig::default(), cb);
        let l = p.b.listen(B6, 80, 16).unwrap();
        let ca =
            p.a.connect(p.now, A6, SocketAddrV6::new(B6, 80, 0, 0))
                .unwrap();
        p.run();
        let syn = p.log[0].1.repr();
        assert_eq!((syn.flags, syn.options.mss), (TcpFlags::SYN, Some(1440)));
        assert!((40_000..=40_999).contains(&syn.src_port));
        assert_eq!((p.log[0].1.src, p.log[0].1.dst), (A6.into(), B6.into()));
        assert_eq!(p.log[1].1.repr().options.mss, Some(1440));
        let cb = p.b.accept(l).expect("accepted");
        assert_eq!(p.a.state(ca), Some(State::Established));
        assert_eq!(p.b.info(cb).unwrap().negotiated.mss, 1440);
        p.a.send(p.now, ca, b"over ipv6").unwrap();
        p.run();
        let mut buf = [0u8; 16];
        assert_eq!(p.b.recv(cb, &mut buf).unwrap(), 9);
        assert_eq!(&buf[..9], b"over ipv6");
        let s = p.b.stats();
        let want = if cookies == SynCookieMode::Always {
            1
        } else {
            0
        };
        assert_eq!((s.cookies_sent, s.cookies_accepted), (want, want));
    }
}

/// Mixed families, IPv4-mapped and loopback IPv6 addresses are never a connection.
#[test]
fn ipv6_martians_and_mixed_families() {
    let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
    b.listen(Ipv6Addr::UNSPECIFIED, 80, 16).unwrap();
    let syn = linux_syn();
    let mapped = Ipv4Addr::new(198, 18, 0, 1).to_ipv6_mapped();
    b.on_segment(T0, mapped, B6, &syn);
    b.on_segment(T0, A6, mapped, &syn);
    b.on_segment(T0, Ipv6Addr::LOCALHOST, B6, &syn);
    b.on_segment(T0, B6, B6, &syn);
    b.on_segment(T0, A6, Ipv4Addr::new(198, 18, 0, 2), &syn);
    b.on_segment(T0, "ff02::1".parse::<Ipv6Addr>().unwrap(), B6, &syn);
    assert!(flush(&mut b, T0).is_empty());
    assert_eq!((b.stats().martian_src_in, b.stats().malformed_in), (4, 2));
    assert_eq!(
        b.connect(T0, A6, SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80)),
        Err(ConnectError::InvalidAddress)
    );
    assert_eq!(
        b.connect(T0, A6, SocketAddrV6::new(mapped, 80, 0, 0)),
        Err(ConnectError::InvalidAddress)
    );
}
