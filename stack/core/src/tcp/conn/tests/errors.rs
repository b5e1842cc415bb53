//! The error messages the application and the CLI print.

use crate::tcp::{ConnError, SendError};

#[test]
fn error_messages() {
    assert_eq!(ConnError::Refused.to_string(), "connection refused");
    assert_eq!(ConnError::Reset.to_string(), "connection reset");
    assert_eq!(ConnError::TimedOut.to_string(), "connection timed out");
    assert_eq!(ConnError::Aborted.to_string(), "connection aborted");
    assert_eq!(SendError::NotConnected.to_string(), "not connected");
    assert_eq!(SendError::Full.to_string(), "send buffer full");
    assert_eq!(SendError::WriteClosed.to_string(), "write side closed");
    assert_eq!(SendError::Closed(None).to_string(), "closed");
    assert_eq!(
        SendError::Closed(Some(ConnError::Reset)).to_string(),
        "closed: connection reset"
    );
    assert_eq!(crate::wire::Error::Checksum.to_string(), "bad checksum");
}
