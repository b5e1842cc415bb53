//! The bench library's error: what failed, with the steps that led to it, as one line for
//! the program's edge (`xdptcp-bench: <error>`). `bail!` / `format_err!` make a message,
//! [`Context`] adds the step (`create results/...: Permission denied`); I/O, JSON and the
//! stack's own errors convert with `?`.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A check or step failed; the message says which.
    #[error("{0}")]
    Msg(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    ParseInt(#[from] std::num::ParseIntError),
    #[error(transparent)]
    ParseFloat(#[from] std::num::ParseFloatError),
    #[error(transparent)]
    Xdp(#[from] xdptcp_xdp::Error),
    #[error(transparent)]
    AfXdp(#[from] xdptcp::phy::AfXdpError),
    /// `step: what went wrong in it` (the whole chain on one line).
    #[error("{step}: {inner}")]
    Context { step: String, inner: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the step that failed, as `anyhow::Context` does.
pub trait Context<T> {
    fn context<C: Display>(self, step: C) -> Result<T>;
    fn with_context<C: Display, F: FnOnce() -> C>(self, step: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context<C: Display>(self, step: C) -> Result<T> {
        self.map_err(|e| Error::Context {
            step: step.to_string(),
            inner: Box::new(e.into()),
        })
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, step: F) -> Result<T> {
        self.map_err(|e| Error::Context {
            step: step().to_string(),
            inner: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context<C: Display>(self, step: C) -> Result<T> {
        self.ok_or_else(|| Error::Msg(step.to_string()))
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, step: F) -> Result<T> {
        self.ok_or_else(|| Error::Msg(step().to_string()))
    }
}

/// An [`Error::Msg`] from a format string or from anything `Display`.
macro_rules! format_err {
    ($fmt:literal $($arg:tt)*) => {
        $crate::error::Error::Msg(format!($fmt $($arg)*))
    };
    ($msg:expr $(,)?) => {
        $crate::error::Error::Msg($msg.to_string())
    };
}

/// Returns an [`Error::Msg`] from a format string.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::format_err!($($arg)*))
    };
}

pub(crate) use {bail, format_err};
