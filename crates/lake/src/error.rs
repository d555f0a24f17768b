//! The one error type of the lake, classified for retries.

/// What went wrong writing to the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// Encoding a buffer failed (a bug or a value outside the file format's range).
    #[error("encoding {what}: {message}")]
    Encode { what: &'static str, message: String },
    /// An S3 or Firehose call failed; `retriable` says whether trying again can help.
    #[error("{operation} failed ({code}): {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
        retriable: bool,
    },
    /// A record larger than a hard limit (memory budget, Firehose record size).
    #[error("record of {size} bytes exceeds {limit} ({max} bytes)")]
    TooLarge {
        size: usize,
        max: usize,
        limit: &'static str,
    },
    /// A previous upload failed for good; the writer accepts nothing more, so that
    /// nothing is checkpointed past data that never reached S3.
    #[error("the lake writer stopped after a failed upload: {0}")]
    Stopped(String),
    /// Records of a shard must be added in shard order (after a lease is lost and
    /// taken again, call `drop_shard` before reading from the checkpoint).
    #[error("record {position} of {stream}/{shard} is not after the last one added ({last})")]
    OutOfOrder {
        stream: String,
        shard: String,
        position: String,
        last: String,
    },
    /// The writer is shutting down.
    #[error("the lake writer is closed")]
    Closed,
}

impl LakeError {
    /// Whether the same call may succeed when tried again.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            LakeError::Aws {
                retriable: true,
                ..
            }
        )
    }

    pub(crate) fn encode(what: &'static str, e: impl std::fmt::Display) -> Self {
        LakeError::Encode {
            what,
            message: e.to_string(),
        }
    }
}
