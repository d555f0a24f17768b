//! The one error type of the model: what is wrong with a record, precisely
//! enough to dead-letter it with a useful reason.

/// Why a record was rejected. `Display` is the human reason (it names the
/// field); [`ModelError::error_type`] is the bounded machine name used for
/// dead-letter routing (`errors/<stage>/<error-type>/`) and metric labels.
///
/// None of these is retriable: the same bytes always fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("payload too large: {size} bytes (max {max})")]
    Oversized { size: usize, max: usize },
    #[error("invalid JSON at line {line} column {column}: {message}")]
    BadJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("missing field \"{field}\"")]
    MissingField { field: String },
    #[error("field \"{field}\": {reason}")]
    BadField { field: String, reason: String },
    #[error("unknown event type: {detail}")]
    UnknownType { detail: String },
}

impl ModelError {
    /// Bounded machine name of the error kind.
    pub fn error_type(&self) -> &'static str {
        match self {
            ModelError::Oversized { .. } => error_types::OVERSIZED,
            ModelError::BadJson { .. } => error_types::BAD_JSON,
            ModelError::MissingField { .. } => error_types::MISSING_FIELD,
            ModelError::BadField { .. } => error_types::BAD_FIELD,
            ModelError::UnknownType { .. } => error_types::UNKNOWN_TYPE,
        }
    }

    /// The field the error is about, if it is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ModelError::MissingField { field } | ModelError::BadField { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Always false: a malformed record stays malformed. Kept so callers that
    /// classify every error uniformly have one place to ask.
    pub fn is_retriable(&self) -> bool {
        false
    }

    pub(crate) fn bad_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::BadField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        ModelError::MissingField {
            field: field.into(),
        }
    }
}

/// Every `error_type` value used on dead letters, in one place so the label
/// set stays bounded. Stages add their own (for example `late`) here too.
pub mod error_types {
    pub const BAD_JSON: &str = "bad_json";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const BAD_FIELD: &str = "bad_field";
    pub const OVERSIZED: &str = "oversized";
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// An event later than the allowed lateness (aggregator).
    pub const LATE: &str = "late";
    /// A record that could not be delivered downstream after all retries.
    pub const DELIVERY_FAILED: &str = "delivery_failed";
    pub const ALL: &[&str] = &[
        BAD_JSON,
        MISSING_FIELD,
        BAD_FIELD,
        OVERSIZED,
        UNKNOWN_TYPE,
        LATE,
        DELIVERY_FAILED,
    ];
}
