//! ICMPv6 Parameter Problem (RFC 4443 §3.4) for a stack flow on a real veth pair (root only),
//! with an IPv6-only stack (no IPv4 address, `StackOptions::addr` = `None`): the stack
//! connects to [2001:2::2]:5005, whose SYNs the peer's nftables drops; the peer answers the
//! captured SYN with a Parameter Problem (code 1, "unrecognized Next Header", pointer 6)
//! from a raw ICMPv6 socket, quoting the SYN, the kernel filling in the checksum. The XDP
//! program steers it to the stack (steer6.h types 1-4), and the connect fails at once with
//! EPROTO, as Linux's `tcp_v6_err` fails a SYN-SENT socket (`icmpv6_err_convert`:
//! ICMPV6_PARAMPROB is EPROTO, fatal). The test itself is common/param_problem.rs, shared
//! with the IPv4 twin veth_icmp_param.rs.
//!
//! Addresses 2001:2::1 / 2001:2::2 (RFC 5180) in the test's own namespaces, removed with
//! them, also on panic; every wait is bounded in time.

#[path = "common/param_problem.rs"]
mod param_problem;

use param_problem::{parameter_problem_fails_connect, Family};
use xdptcp_harness::IcmpAnswer;

#[test]
fn ipv6_parameter_problem_fails_connect_with_eproto() {
    parameter_problem_fails_connect(Family {
        v6: true,
        port: 5005,
        answer: IcmpAnswer {
            ty: 4,
            code: 1,
            rest: 6u32.to_be_bytes(),
        },
        counter: |i| i.rx_icmp6_param_problem,
    });
}
