//! The one error type of the join core.

/// A failure of a state store (DynamoDB in the service, never for the
/// in-memory stores). The store implementation classifies it; the caller's
/// retry layer (the service's record-processing loop) decides what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store {operation} failed: {message}")]
pub struct StoreError {
    /// What was attempted, e.g. `put_customers` or `query customer versions`.
    pub operation: String,
    pub message: String,
    /// Throttling, timeouts, 5xx: worth retrying the same call.
    pub retriable: bool,
}

impl StoreError {
    pub fn retriable(operation: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError {
            operation: operation.into(),
            message: message.into(),
            retriable: true,
        }
    }

    pub fn fatal(operation: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError {
            operation: operation.into(),
            message: message.into(),
            retriable: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The in-memory pending set is at `max_pending_sales`: the caller must
    /// stop reading sales until the watermark advances (backpressure).
    #[error("{pending} sales are pending, the limit is {limit}; advance the watermark first")]
    PendingFull { pending: usize, limit: usize },
    /// A sale the join cannot compute amounts for (quantity × unit_price
    /// out of the money range); the model's parser refuses these, so this
    /// is a dead letter from a hand-built sale.
    #[error("sale {sale_id}: {reason}")]
    InvalidSale { sale_id: String, reason: String },
    #[error("invalid join configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
}

impl JoinError {
    /// Whether repeating the same call later can succeed. State is left
    /// consistent on every error: buffered writes stay buffered until a
    /// flush succeeds.
    pub fn is_retriable(&self) -> bool {
        match self {
            JoinError::Store(e) => e.retriable,
            JoinError::PendingFull { .. } => true,
            JoinError::InvalidSale { .. } | JoinError::InvalidConfig(_) => false,
        }
    }
}

pub type Result<T, E = JoinError> = std::result::Result<T, E>;
