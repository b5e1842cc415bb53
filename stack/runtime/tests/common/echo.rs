//! The Linux side of an echo exchange, shared by the veth tests.

use std::io::{Read, Write};
use std::net::TcpStream;

/// Writes `msg` on `s` and reads exactly as many bytes back; an error if they differ.
pub fn echo_roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    s.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back)?;
    if back != msg {
        return Err(std::io::Error::other("echo differs"));
    }
    Ok(())
}
