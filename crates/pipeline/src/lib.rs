//! The plumbing every consuming service shares, so that each service's code is only its
//! own logic:
//!
//! - [`watch_consumer`]: the KCL-style consumer's health as a readiness component.
//! - [`DeadLetters`]: rejected records to the `dead-letters` stream with their reason,
//!   counted by stage and error type. Nothing is dropped silently.
//! - [`AckedCheckpoints`]: a shard's checkpoint advances only after everything derived from
//!   the records before it was acknowledged downstream, in order.

mod checkpoints;
mod dead_letters;
mod readiness;

pub use checkpoints::{AckedCheckpoints, CheckpointSink};
pub use dead_letters::{DeadLetterMetrics, DeadLetters};
pub use readiness::watch_consumer;

/// Wall-clock "now" as a model timestamp (for `received_at`, `enriched_at`, ...).
pub fn now() -> flowline_model::Timestamp {
    flowline_model::Timestamp::from_millis(chrono::Utc::now().timestamp_millis())
        .unwrap_or_else(|| flowline_model::Timestamp::from_millis(0).expect("epoch"))
}
