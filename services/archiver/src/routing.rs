//! What each input stream becomes in the lake: the record's kind decides its dataset.

use std::time::UNIX_EPOCH;

use bytes::Bytes;
use flowline_kinesis::consumer::KinesisClientRecord;
use flowline_lake::{ARCHIVER_STAGE, LakeRecord, Payload, Position, RecordMeta};
use flowline_model::Timestamp;

/// How a stream is filed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `raw/<stream>/…jsonl.gz`, byte-exact.
    Raw,
    /// `curated/orders/…parquet`.
    Orders,
    /// `curated/order_metrics/…parquet`.
    Metrics,
    /// `errors/<stage>/<error-type>/…jsonl.gz`.
    DeadLetters,
}

impl InputKind {
    pub const ALL: [InputKind; 4] = [
        InputKind::Raw,
        InputKind::Orders,
        InputKind::Metrics,
        InputKind::DeadLetters,
    ];

    /// A bounded metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Raw => "raw",
            InputKind::Orders => "orders",
            InputKind::Metrics => "metrics",
            InputKind::DeadLetters => "dead_letters",
        }
    }

    /// The record in its lake format; a record that does not convert becomes an
    /// `errors/archiver/…` envelope holding its exact bytes.
    pub fn to_lake(self, meta: &RecordMeta, data: Bytes) -> LakeRecord {
        match self {
            InputKind::Raw => LakeRecord::raw(meta, data),
            InputKind::Orders => LakeRecord::order_from_bytes(meta, &data),
            InputKind::Metrics => LakeRecord::metric_from_bytes(meta, &data),
            InputKind::DeadLetters => LakeRecord::dead_letter_from_bytes(meta, &data),
        }
    }
}

/// The `error_type` of an envelope the archiver made itself because the record read at
/// `meta` could not be filed as what its stream holds, if `record` is one. (A genuine
/// dead letter names another stream as its source.)
pub fn archiver_rejection<'a>(meta: &RecordMeta, record: &'a LakeRecord) -> Option<&'a str> {
    match &record.payload {
        Payload::Error(d)
            if d.stage == ARCHIVER_STAGE
                && d.source_stream == meta.stream
                && d.sequence_number == meta.position.sequence_number =>
        {
            Some(&d.error_type)
        }
        _ => None,
    }
}

/// Where `record` was read.
pub fn record_meta(stream: &str, shard_id: &str, record: &KinesisClientRecord) -> RecordMeta {
    let arrival = record
        .approximate_arrival_timestamp
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .and_then(Timestamp::from_millis)
        // Kinesis always sets it; the read time is the only stand-in.
        .unwrap_or_else(flowline_pipeline::now);
    RecordMeta {
        stream: stream.to_string(),
        shard_id: shard_id.to_string(),
        position: Position::new(record.sequence_number.clone(), record.sub_sequence_number),
        arrival,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use flowline_lake::Dataset;

    use super::*;

    fn record(data: &'static [u8], arrival: Option<SystemTime>) -> KinesisClientRecord {
        KinesisClientRecord {
            partition_key: "pk".into(),
            explicit_hash_key: None,
            data: Bytes::from_static(data),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            sub_sequence_number: 3,
            approximate_arrival_timestamp: arrival,
            aggregated: true,
        }
    }

    #[test]
    fn meta_carries_position_and_arrival() {
        let at = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        let meta = record_meta("sales", "shardId-000000000001", &record(b"{}", Some(at)));
        assert_eq!(
            meta.position.to_string(),
            format!("{}.3", meta.position.sequence_number)
        );
        assert_eq!(meta.arrival.millis(), 1_767_225_600_123);
        assert_eq!(meta.shard_id, "shardId-000000000001");
    }

    #[test]
    fn kinds_route_to_datasets_and_rejections_are_told_apart() {
        let r = record(
            b"not json",
            Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600)),
        );
        let orders = record_meta("orders-enriched", "shardId-000000000000", &r);
        let rejected = InputKind::Orders.to_lake(&orders, r.data.clone());
        assert_eq!(rejected.dataset, Dataset::errors("archiver", "conversion"));
        assert_eq!(archiver_rejection(&orders, &rejected), Some("conversion"));

        let raw = InputKind::Raw.to_lake(&orders, r.data.clone());
        assert_eq!(raw.dataset, Dataset::raw("orders-enriched"));
        assert_eq!(archiver_rejection(&orders, &raw), None);

        // A genuine dead letter, even one naming the archiver, is filed as it is.
        let letter = br#"{"stage":"archiver","reason":"r","error_type":"late","source_stream":"sales","shard_id":"s","sequence_number":"1","received_at":"2026-01-01T00:00:00.000Z","payload_base64":""}"#;
        let r = record(letter, None);
        let dl = record_meta("dead-letters", "shardId-000000000000", &r);
        let filed = InputKind::DeadLetters.to_lake(&dl, r.data.clone());
        assert_eq!(filed.dataset, Dataset::errors("archiver", "late"));
        assert_eq!(archiver_rejection(&dl, &filed), None);
    }
}
