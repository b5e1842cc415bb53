//! ICMPv4 Parameter Problem (RFC 792 type 12) for a stack flow on a real veth pair (root
//! only): the stack connects to 198.18.0.2:5006, whose SYNs the peer's nftables drops; the
//! peer answers the captured SYN with a Parameter Problem (RFC 1108 code 1, "missing a
//! required option", pointer 0) from a raw ICMP socket, quoting the SYN's IPv4 header and
//! TCP header. The XDP program steers it to the stack (icmp.h: type 12, codes 0-2), and the
//! connect fails at once with EPROTO, as Linux's `tcp_v4_err` fails a SYN-SENT socket
//! (`icmp_err_convert`: ICMP_PARAMETERPROB is EPROTO, fatal), counted
//! `icmp_param_problem`. The test itself is common/param_problem.rs, shared with the IPv6
//! twin veth_icmp6_param.rs.
//!
//! Addresses 198.18.0.1 / 198.18.0.2 in the test's own namespaces, removed with them, also
//! on panic; every wait is bounded in time.
//!
//! Run (as root): `cargo test --release -p xdptcp --test veth_icmp_param -- --test-threads=1`.

#[path = "common/param_problem.rs"]
mod param_problem;

use param_problem::{parameter_problem_fails_connect, Family};
use xdptcp_harness::IcmpAnswer;

#[test]
fn ipv4_parameter_problem_fails_connect_with_eproto() {
    parameter_problem_fails_connect(Family {
        v6: false,
        port: 5006,
        answer: IcmpAnswer {
            ty: 12,
            code: 1,
            rest: [0; 4],
        },
        counter: |i| i.rx_icmp_param_problem,
    });
}
