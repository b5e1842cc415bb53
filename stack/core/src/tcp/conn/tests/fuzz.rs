//! Robustness: arbitrary segments and timer firings, fed to a connection in every state,
//! never panic, never loop, and keep the basic invariants (bounded output per poll; a
//! CLOSED connection arms no timer; buffers within their bounds).

use proptest::prelude::*;

use super::*;

const FIXTURES: [Fixture; 9] = [
    syn_sent,
    syn_received,
    established,
    fin_wait_1,
    fin_wait_2,
    close_wait,
    closing,
    last_ack,
    time_wait,
];

static PAYLOAD: [u8; 3000] = [0x5a; 3000];

#[derive(Debug, Clone)]
enum Step {
    Segment {
        flags: u8,
        seq_off: i64,
        ack_off: i64,
        window: u16,
        len: usize,
        ts: Option<(u32, u32)>,
    },
    Advance(u64),
    Send(usize),
    Recv(usize),
    Close,
    Shutdown,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (
            any::<u8>(),
            // Mostly near RCV.NXT / SND.NXT (in-window, the interesting cases), some anywhere.
            prop_oneof![
                4 => -100i64..5_000,
                1 => -70_000i64..70_000,
                1 => any::<u32>().prop_map(i64::from)
            ],
            prop_oneof![
                4 => -10i64..5_000,
                1 => -70_000i64..70_000,
                1 => any::<u32>().prop_map(i64::from)
            ],
            any::<u16>(),
            0usize..3000,
            proptest::option::of(any::<(u32, u32)>()),
        )
            .prop_map(|(flags, seq_off, ack_off, window, len, ts)| Step::Segment {
                flags,
                seq_off,
                ack_off,
                window,
                len,
                ts,
            }),
        2 => (0u64..200_000).prop_map(Step::Advance),
        1 => (0usize..6000).prop_map(Step::Send),
        1 => (0usize..6000).prop_map(Step::Recv),
        1 => Just(Step::Close),
        1 => Just(Step::Shutdown),
    ]
}

fn run(fixture: usize, steps: &[Step]) {
    let mut t = FIXTURES[fixture]();
    for s in steps {
        match *s {
            Step::Segment {
                flags,
                seq_off,
                ack_off,
                window,
                len,
                ts,
            } => {
                let mut r = data(
                    TcpFlags(flags),
                    (5001i64 + seq_off) as u32,
                    (1001i64 + ack_off) as u32,
                    &PAYLOAD[..len],
                );
                r.window = window;
                r.options.timestamp = ts;
                let _ = t.c.on_segment(t.now, &r, &mut t.lim, &mut t.pool);
            }
            Step::Advance(ms_) => {
                t.now += ms(ms_);
                t.c.on_timeout(t.now);
            }
            Step::Send(n) => {
                let _ = t.send(&PAYLOAD[..n.min(3000)]);
            }
            Step::Recv(n) => {
                let mut buf = vec![0u8; n];
                let got = t.recv(&mut buf);
                assert!(got <= n);
            }
            Step::Close => t.c.close(t.now),
            Step::Shutdown => t.c.shutdown_write(t.now),
        }
        let mut count = 0;
        t.c.poll_transmit(t.now, |r| {
            count += 1;
            assert!(r.payload.len() <= 1460);
        });
        // wmem 4096 / MSS 536 at most + FIN + probe + ACK + RST.
        assert!(count <= 16, "{count} segments from one poll");
        assert!(t.c.recv_available() <= WND as usize);
        if t.c.state() == State::Closed {
            assert_eq!(t.c.next_deadline(), None);
        }
        if let Some(d) = t.c.next_deadline() {
            assert!(
                d > t.now || t.c.state() == State::Closed,
                "a due timer was not run"
            );
        }
        while t.c.poll_event().is_some() {}
    }
}

// 256 cases by default; PROPTEST_CASES=N for a longer run.
proptest! {

    #[test]
    fn arbitrary_input_never_panics(fixture in 0usize..9, steps in prop::collection::vec(step(), 1..40)) {
        run(fixture, &steps);
    }
}
