//! The dead-letter envelope (DESIGN.md section 4).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::fields::{FieldSpec, FieldType as T, Fields, spec};
use crate::parse::Record;
use crate::time::Timestamp;

/// Largest payload copied into an envelope. Base64 grows it by a third, and
/// the envelope must itself fit a 1 MiB Kinesis record, so a larger payload
/// (an `oversized` record can be up to 1 MiB) keeps only its first 512 KiB
/// and is flagged with `payload_truncated`.
pub const MAX_DEAD_LETTER_PAYLOAD_BYTES: usize = 512 * 1024;

/// Longest `reason` kept (reasons never echo payload, but stay bounded).
pub const MAX_REASON_CHARS: usize = 1024;

/// Where a record came from: its lineage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordSource {
    pub stream: String,
    pub shard_id: String,
    pub sequence_number: String,
}

/// A rejected record with the reason, routed to the `dead-letters` stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The service that rejected it (`enrichment-joiner`, `aggregator`, ...).
    pub stage: String,
    pub reason: String,
    /// A bounded name, see [`crate::error_types`].
    pub error_type: String,
    pub source_stream: String,
    pub shard_id: String,
    pub sequence_number: String,
    pub received_at: Timestamp,
    pub payload_base64: String,
    /// Only written when true: not one of DESIGN's fields, an addition for
    /// payloads too large to embed whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
}

impl DeadLetter {
    pub fn new(
        stage: &str,
        error_type: &str,
        reason: &str,
        source: &RecordSource,
        payload: &[u8],
        received_at: Timestamp,
    ) -> DeadLetter {
        let kept = &payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD_BYTES)];
        DeadLetter {
            stage: stage.to_string(),
            reason: reason.chars().take(MAX_REASON_CHARS).collect(),
            error_type: error_type.to_string(),
            source_stream: source.stream.clone(),
            shard_id: source.shard_id.clone(),
            sequence_number: source.sequence_number.clone(),
            received_at,
            payload_base64: STANDARD.encode(kept),
            payload_truncated: kept.len() < payload.len(),
        }
    }

    /// The envelope for a record the model rejected.
    pub fn from_model_error(
        stage: &str,
        error: &ModelError,
        payload: &[u8],
        source: &RecordSource,
        received_at: Timestamp,
    ) -> DeadLetter {
        DeadLetter::new(
            stage,
            error.error_type(),
            &error.to_string(),
            source,
            payload,
            received_at,
        )
    }

    /// The original payload bytes (possibly truncated, see `payload_truncated`).
    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(&self.payload_base64)
    }
}

impl Record for DeadLetter {
    const NAME: &'static str = "dead letter";
    const FIELDS: &'static [FieldSpec] = &[
        spec("stage", T::String),
        spec("reason", T::String),
        spec("error_type", T::String),
        spec("source_stream", T::String),
        spec("shard_id", T::String),
        spec("sequence_number", T::String),
        spec("received_at", T::Time),
        spec("payload_base64", T::String),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        let d = DeadLetter {
            stage: f.id("stage")?,
            reason: f.string("reason")?,
            error_type: f.id("error_type")?,
            source_stream: f.string("source_stream")?,
            shard_id: f.string("shard_id")?,
            sequence_number: f.string("sequence_number")?,
            received_at: f.time("received_at")?,
            payload_base64: f.string("payload_base64")?,
            payload_truncated: f.opt_bool("payload_truncated")?.unwrap_or(false),
        };
        if STANDARD.decode(&d.payload_base64).is_err() {
            return Err(f.bad("payload_base64", "not valid base64"));
        }
        Ok(d)
    }
}
