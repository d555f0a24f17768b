//! The crate's error type.

use std::fmt;

/// Errors of the Kinesis library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record that is not a valid KPL aggregated record.
    #[error("invalid aggregated record: {0}")]
    Aggregation(String),
    /// A record the producer refuses (empty or long partition key, too large, bad hash key).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// ListShards returned something we cannot route by.
    #[error("invalid shard map: {0}")]
    InvalidShardMap(String),
    /// Configuration problems, each naming the setting.
    #[error("invalid configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// `try_send` found the producer's buffer full.
    #[error("producer buffer is full")]
    BufferFull,
    /// The producer was shut down (or its background task ended) before the record was acknowledged.
    #[error("producer is closed")]
    Closed,
    /// A record could not be delivered: a non-retriable error, or its TTL ran out.
    #[error(transparent)]
    Put(#[from] PutError),
    /// A Kinesis API call (other than a record's put) failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A DynamoDB lease table call failed (consumer).
    #[error("lease table {op} failed: {message}")]
    LeaseTable {
        op: &'static str,
        message: String,
        retriable: bool,
    },
    /// A lease item that this library cannot read (consumer).
    #[error("invalid lease {key}: {message}")]
    InvalidLease { key: String, message: String },
    /// The worker no longer holds the shard's lease, so it may not checkpoint it (consumer).
    #[error("lease {0} is not held by this worker")]
    LeaseLost(String),
    /// A checkpoint the processor may not write (behind the last record delivered, or SHARD_END early).
    #[error("invalid checkpoint: {0}")]
    InvalidCheckpoint(String),
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::BufferFull => true,
            Error::Api(e) => e.reason.is_retriable(),
            Error::Put(e) => e.last_error.reason.is_retriable(),
            Error::LeaseTable { retriable, .. } => *retriable,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a Kinesis call or entry failed; bounded, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// ProvisionedThroughputExceededException / LimitExceededException.
    Throttled,
    /// KMSThrottlingException.
    KmsThrottled,
    /// InternalFailure or an HTTP 5xx.
    ServerError,
    /// The request did not complete within the request timeout.
    Timeout,
    /// Connection or dispatch failure, or an unreadable response.
    Transport,
    /// ValidationException / InvalidArgumentException and other client errors.
    Invalid,
    /// ResourceNotFoundException.
    NotFound,
    /// AccessDenied and KMS key problems (disabled, not found, invalid state, opt-in).
    AccessDenied,
    /// An error code we do not recognise; retried, bounded by the record TTL.
    Unknown,
}

impl FailureReason {
    /// Every reason, so metric series can exist (at 0) before the first failure.
    pub const ALL: [FailureReason; 9] = [
        Self::Throttled,
        Self::KmsThrottled,
        Self::ServerError,
        Self::Timeout,
        Self::Transport,
        Self::Invalid,
        Self::NotFound,
        Self::AccessDenied,
        Self::Unknown,
    ];

    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            Self::Throttled
                | Self::KmsThrottled
                | Self::ServerError
                | Self::Timeout
                | Self::Transport
                | Self::Unknown
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::KmsThrottled => "kms_throttled",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::AccessDenied => "access_denied",
            Self::Unknown => "unknown",
        }
    }

    /// Classifies a Kinesis error code (service error `__type` or PutRecords entry `ErrorCode`).
    /// `http_status` refines unknown codes: 5xx is a server error, other 4xx a client error.
    pub fn from_code(code: &str, http_status: Option<u16>) -> Self {
        match code {
            "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "ThrottlingException" => Self::Throttled,
            "KMSThrottlingException" => Self::KmsThrottled,
            "InternalFailure"
            | "InternalFailureException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException" => Self::ServerError,
            "ValidationException" | "InvalidArgumentException" | "SerializationException" => {
                Self::Invalid
            }
            "ResourceNotFoundException" => Self::NotFound,
            "AccessDeniedException"
            | "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSInvalidStateException"
            | "KMSNotFoundException"
            | "KMSOptInRequired"
            | "UnrecognizedClientException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredTokenException" => Self::AccessDenied,
            _ => match http_status {
                Some(s) if s >= 500 => Self::ServerError,
                Some(429) => Self::Throttled,
                Some(s) if (400..500).contains(&s) => Self::Invalid,
                _ => Self::Unknown,
            },
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed Kinesis call or PutRecords entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    pub reason: FailureReason,
    /// The Kinesis error code when there is one, else a short description such as `timeout`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(reason: FailureReason, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason,
            code: code.into(),
            message: message.into(),
        }
    }

    /// From an error code as Kinesis reports it.
    pub fn from_code(code: &str, message: impl Into<String>, http_status: Option<u16>) -> Self {
        Self::new(FailureReason::from_code(code, http_status), code, message)
    }
}

/// Final failure of one user record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record not delivered after {attempts} attempt(s){}: {last_error}", if *.expired { " (record TTL expired)" } else { "" })]
pub struct PutError {
    /// The last error seen for the record.
    pub last_error: ApiError,
    pub attempts: u32,
    /// True when the record was retriable but its TTL ran out.
    pub expired: bool,
}
