//! What the writer buffers: a record routed to its dataset and partition.
//!
//! Partition time, per dataset (UTC):
//! - raw: the event's own time (`event_time` of a sale, `updated_at` of a customer or
//!   address version) when the record is JSON with a parseable time, otherwise the
//!   Kinesis approximate arrival time. Event time keeps a replay of an hour in that
//!   hour's folder; arrival time is the only time a broken record has.
//! - curated orders: `event_time`; metrics: `window_start`; errors: `received_at`.
//!
//! Records the archiver cannot file stay in the lake as dead-letter envelopes under
//! `errors/archiver/<error-type>/` with the exact bytes in `payload_base64`:
//! `conversion` (a curated record or envelope that does not parse) and `unframeable`
//! (a raw record containing `\n`, which no JSON Lines file can hold byte-exact).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use flowline_model::{DeadLetter, EnrichedOrder, Timestamp, WindowMetric};
use serde::Deserialize;

use crate::layout::{Dataset, Partition, Position};

/// The stage name on envelopes the archiver writes itself.
pub const ARCHIVER_STAGE: &str = "archiver";

/// `error_type`s of the archiver's own envelopes (not in `flowline_model::error_types`).
pub mod archiver_error_types {
    /// A curated record or dead-letter envelope that failed to parse.
    pub const CONVERSION: &str = "conversion";
    /// A raw record that contains a newline byte.
    pub const UNFRAMEABLE: &str = "unframeable";
}

/// Where a record was read: stream, shard, position and Kinesis arrival time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    pub stream: String,
    pub shard_id: String,
    pub position: Position,
    /// ApproximateArrivalTimestamp (or the time read when Kinesis gives none).
    pub arrival: Timestamp,
}

/// A record in one of the lake's formats.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Raw bytes, written as one JSON Lines line.
    Raw(Bytes),
    Order(Box<EnrichedOrder>),
    Metric(WindowMetric),
    Error(Box<DeadLetter>),
}

/// A record routed to its dataset and partition, with the bytes it counts against
/// the buffer size hint and the memory budget.
#[derive(Clone, Debug, PartialEq)]
pub struct LakeRecord {
    pub dataset: Dataset,
    pub partition: Partition,
    pub payload: Payload,
    pub size: usize,
}

#[derive(Deserialize)]
struct EventTimes {
    event_time: Option<String>,
    updated_at: Option<String>,
}

impl LakeRecord {
    /// A record of raw stream `meta.stream`, kept byte-exact.
    pub fn raw(meta: &RecordMeta, data: Bytes) -> LakeRecord {
        if data.contains(&b'\n') {
            return Self::archiver_error(
                meta,
                archiver_error_types::UNFRAMEABLE,
                "record contains a newline byte; JSON Lines cannot hold it byte-exact",
                &data,
            );
        }
        let time = serde_json::from_slice::<EventTimes>(&data)
            .ok()
            .and_then(|t| t.event_time.or(t.updated_at))
            .and_then(|t| Timestamp::parse_rfc3339(&t).ok())
            .unwrap_or(meta.arrival);
        let dataset = Dataset::raw(&meta.stream);
        LakeRecord {
            partition: dataset.partition(time),
            dataset,
            size: data.len(),
            payload: Payload::Raw(data),
        }
    }

    pub fn order(order: EnrichedOrder, size: usize) -> LakeRecord {
        let dataset = Dataset::CuratedOrders;
        LakeRecord {
            partition: dataset.partition(order.event_time),
            dataset,
            payload: Payload::Order(Box::new(order)),
            size,
        }
    }

    pub fn metric(metric: WindowMetric, size: usize) -> LakeRecord {
        let dataset = Dataset::CuratedMetrics;
        LakeRecord {
            partition: dataset.partition(metric.window_start),
            dataset,
            payload: Payload::Metric(metric),
            size,
        }
    }

    pub fn dead_letter(letter: DeadLetter, size: usize) -> LakeRecord {
        let dataset = Dataset::errors(&letter.stage, &letter.error_type);
        LakeRecord {
            partition: dataset.partition(letter.received_at),
            dataset,
            payload: Payload::Error(Box::new(letter)),
            size,
        }
    }

    /// An `orders-enriched` record; a conversion error envelope when it does not parse.
    pub fn order_from_bytes(meta: &RecordMeta, data: &[u8]) -> LakeRecord {
        match flowline_model::parse::<EnrichedOrder>(data) {
            Ok(o) => Self::order(o, data.len()),
            Err(e) => Self::conversion_error(meta, &e.to_string(), data),
        }
    }

    /// An `order-metrics` record; a conversion error envelope when it does not parse.
    pub fn metric_from_bytes(meta: &RecordMeta, data: &[u8]) -> LakeRecord {
        match flowline_model::parse::<WindowMetric>(data) {
            Ok(m) => Self::metric(m, data.len()),
            Err(e) => Self::conversion_error(meta, &e.to_string(), data),
        }
    }

    /// A `dead-letters` record; wrapped in a conversion envelope when it is not one.
    pub fn dead_letter_from_bytes(meta: &RecordMeta, data: &[u8]) -> LakeRecord {
        // A dead letter embeds up to 512 KiB of payload (base64), so the default 256 KiB
        // record limit would refuse the envelope of every `oversized` record; its bound is
        // the 1 MiB Kinesis record it travelled in.
        let parse = flowline_model::ParseConfig {
            max_record_bytes: 1024 * 1024,
        };
        match parse.parse::<DeadLetter>(data) {
            Ok(d) => Self::dead_letter(d, data.len()),
            Err(e) => Self::conversion_error(meta, &e.to_string(), data),
        }
    }

    fn conversion_error(meta: &RecordMeta, reason: &str, data: &[u8]) -> LakeRecord {
        Self::archiver_error(meta, archiver_error_types::CONVERSION, reason, data)
    }

    /// The archiver's own envelope. Unlike `DeadLetter::new` it keeps the whole payload:
    /// it goes straight to S3, not through a 1 MiB Kinesis record.
    fn archiver_error(
        meta: &RecordMeta,
        error_type: &str,
        reason: &str,
        data: &[u8],
    ) -> LakeRecord {
        let letter = DeadLetter {
            stage: ARCHIVER_STAGE.to_string(),
            reason: reason
                .chars()
                .take(flowline_model::MAX_REASON_CHARS)
                .collect(),
            error_type: error_type.to_string(),
            source_stream: meta.stream.clone(),
            shard_id: meta.shard_id.clone(),
            sequence_number: meta.position.sequence_number.clone(),
            received_at: meta.arrival,
            payload_base64: STANDARD.encode(data),
            payload_truncated: false,
        };
        Self::dead_letter(letter, data.len() * 4 / 3 + 256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            stream: "sales".into(),
            shard_id: "shardId-000000000000".into(),
            position: Position::new("1", 0),
            arrival: "2024-05-01T10:30:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn raw_partition_prefers_event_time() {
        let r = LakeRecord::raw(
            &meta(),
            Bytes::from_static(br#"{"sale_id":"s","event_time":"2024-04-30T23:59:59.000Z"}"#),
        );
        assert_eq!(r.partition.to_string(), "dt=2024-04-30/hour=23");
        let r = LakeRecord::raw(
            &meta(),
            Bytes::from_static(br#"{"customer_id":"c","updated_at":"2024-04-30T01:00:00Z"}"#),
        );
        assert_eq!(r.partition.to_string(), "dt=2024-04-30/hour=01");
        let r = LakeRecord::raw(&meta(), Bytes::from_static(b"not json"));
        assert_eq!(r.partition.to_string(), "dt=2024-05-01/hour=10");
        assert_eq!(r.payload, Payload::Raw(Bytes::from_static(b"not json")));
    }

    #[test]
    fn unframeable_and_unconvertible_records_become_exact_envelopes() {
        let data = b"{\n \"sale_id\": 1}";
        let r = LakeRecord::raw(&meta(), Bytes::from_static(data));
        assert_eq!(r.dataset, Dataset::errors("archiver", "unframeable"));
        let Payload::Error(d) = &r.payload else {
            panic!("not an envelope")
        };
        assert_eq!(d.payload().unwrap(), data);
        assert_eq!(d.sequence_number, "1");
        assert_eq!(r.partition.to_string(), "dt=2024-05-01");

        let big = vec![b'x'; 700 * 1024];
        let r = LakeRecord::order_from_bytes(&meta(), &big);
        assert_eq!(r.dataset, Dataset::errors("archiver", "conversion"));
        let Payload::Error(d) = &r.payload else {
            panic!("not an envelope")
        };
        assert_eq!(d.payload().unwrap(), big, "payload kept whole");
        assert!(!d.payload_truncated);
    }

    #[test]
    fn the_dead_letter_of_an_oversized_record_is_filed_under_its_stage() {
        let source = flowline_model::RecordSource {
            stream: "sales".into(),
            shard_id: "shardId-000000000000".into(),
            sequence_number: "7".into(),
        };
        let payload = vec![b'x'; 300 * 1024];
        let letter = DeadLetter::new(
            "enrichment-joiner",
            "oversized",
            "too large",
            &source,
            &payload,
            meta().arrival,
        );
        let bytes = serde_json::to_vec(&letter).unwrap();
        assert!(bytes.len() > flowline_model::DEFAULT_MAX_RECORD_BYTES);
        let r = LakeRecord::dead_letter_from_bytes(&meta(), &bytes);
        assert_eq!(r.dataset, Dataset::errors("enrichment-joiner", "oversized"));
        assert_eq!(r.payload, Payload::Error(Box::new(letter)));
    }
}
