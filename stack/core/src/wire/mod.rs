//! The wire layer: for each protocol a zero-copy view (`Packet<T: AsRef<[u8]>>`, fields read
//! through byte ranges) and a parsed meaning (`Repr`). `Repr::parse` checks everything once;
//! after it no accessor can panic. `Repr::emit` writes straight into a caller-owned buffer
//! (a UMEM frame). No allocation per packet. (Model: smoltcp's `wire`.)

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod frame6;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod seq;
pub mod tcp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use frame::{emit_tcp_frame, parse_tcp_frame, parse_tcp_frame_with, tcp_frame_len, TcpFrame};
pub use frame6::{
    emit_tcp6_frame, parse_any_tcp_frame_with, parse_icmpv6_error_frame, parse_tcp6_frame_with,
    tcp6_frame_len, AnyTcpFrame, Icmpv6ErrorFrame, Tcp6Frame,
};
pub use icmpv4::{
    parse_icmpv4_frame, DstUnreachable, Icmpv4ErrorRepr, Icmpv4Frame, Icmpv4Message, ParamProblem,
    QuotedTcp, TimeExceeded,
};
pub use icmpv6::{Icmpv6ErrorRepr, Icmpv6Packet};
pub use ipv4::{Ipv4Packet, Ipv4Repr, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
pub use ipv6::{FlowLabels, Ipv6Packet, Ipv6Repr};
pub use seq::SeqNum;
pub use tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr, MAX_SACK_BLOCKS};

/// Why a packet was rejected. Every rejected packet is dropped and counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// Shorter than its headers or its length fields say.
    #[error("truncated packet")]
    Truncated,
    /// A field has a value the protocol forbids (bad version, header length, option length).
    #[error("malformed packet")]
    Malformed,
    /// The checksum does not verify.
    #[error("bad checksum")]
    Checksum,
    /// Valid but not something this stack handles (IP fragment, other protocol, IPv6).
    #[error("unsupported packet")]
    Unsupported,
}

/// Result of parsing a packet: the value or the reason it was rejected.
pub type Result<T> = core::result::Result<T, Error>;
