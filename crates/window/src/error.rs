//! The error type of the window core.

/// What can go wrong building or restoring a window operator. Events are
/// never errors: a record that cannot be counted is a [`crate::Rejection`].
/// None of these is retriable: the same config or bytes fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid window settings: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// Saved state was written under settings that change what it means
    /// (window length, dimensions) or by an unknown format version.
    #[error("saved window state does not match the settings: {0}")]
    IncompatibleState(String),
    /// Saved state cannot be decoded or is inconsistent.
    #[error("corrupt window state: {0}")]
    CorruptState(String),
    /// Merged partials of a window add up beyond the money range.
    #[error("window from {window_start}: merged totals exceed the money range")]
    AmountOverflow {
        window_start: flowline_model::Timestamp,
    },
}

impl Error {
    pub fn is_retriable(&self) -> bool {
        false
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
