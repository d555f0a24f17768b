//! What happens to one order: counted, a duplicate, or rejected with the
//! dead-letter reason. The same for the operator and for per-shard partials.

use std::fmt;

use flowline_model::{Timestamp, error_types};

/// What happened to one order.
#[must_use = "a rejected order must go to dead-letters"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted. From [`crate::WindowOperator`]: if its window had already
    /// been emitted, the updated keys were pushed to the output with the
    /// next revision.
    Counted,
    /// Its `order_id` was already counted in its window: ignored.
    Duplicate,
    /// Not counted: send it to dead-letters (see [`Rejection::error_type`]).
    Rejected(Rejection),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The watermark had passed the window's end plus the allowed lateness.
    Late {
        event_time: Timestamp,
        window_end: Timestamp,
        watermark: Timestamp,
    },
    /// Adding it would take the window's totals beyond the money range.
    AmountOverflow { window_start: Timestamp },
}

impl Rejection {
    /// Dead-letter `error_type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Rejection::Late { .. } => error_types::LATE,
            Rejection::AmountOverflow { .. } => error_types::BAD_FIELD,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Late {
                event_time,
                window_end,
                watermark,
            } => write!(
                f,
                "late: event_time {event_time} is in the window ending {window_end}, \
                 beyond the allowed lateness at watermark {watermark}"
            ),
            Rejection::AmountOverflow { window_start } => write!(
                f,
                "field \"gross_amount\": window total from {window_start} would exceed the money range"
            ),
        }
    }
}
