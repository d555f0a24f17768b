//! From Kinesis records to the user records a processor sees: KPL deaggregation, the hash
//! key range filter after a split, and the resume-from-checkpoint filter. Pure functions.

use std::time::SystemTime;

use aws_sdk_kinesis::types::Record;

use super::position::Checkpoint;
use super::processor::KinesisClientRecord;
use crate::agg;
use crate::shards::{HashKeyRange, effective_hash_key};

/// What [`user_records`] dropped or could not read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Aggregated user records whose hash key is outside the shard's range.
    pub out_of_range: u64,
    /// Records that look aggregated but could not be decoded (delivered whole).
    pub corrupt_aggregates: u64,
}

/// Deaggregates one Kinesis record into `out`. After a split, an aggregate can hold user
/// records that belong to the other child (the producer's shard map was stale): those are
/// skipped, as the KCL does. A corrupt aggregate is delivered as it is, so downstream
/// validation dead-letters it instead of it vanishing.
pub(crate) fn user_records(
    r: Record,
    range: Option<HashKeyRange>,
    out: &mut Vec<KinesisClientRecord>,
    skipped: &mut Skipped,
) {
    let arrival = r
        .approximate_arrival_timestamp()
        .and_then(|t| SystemTime::try_from(*t).ok());
    let aggregated = agg::is_aggregated(r.data().as_ref());
    let sequence_number = r.sequence_number;
    let partition_key = r.partition_key;
    let data = bytes::Bytes::from(r.data.into_inner());
    let users = match agg::deaggregate(&partition_key, None, data.clone()) {
        Ok(users) => users,
        Err(e) => {
            tracing::warn!(%sequence_number, error = %e, "cannot deaggregate record; delivering it whole");
            skipped.corrupt_aggregates += 1;
            vec![agg::UserRecord {
                partition_key: partition_key.clone(),
                explicit_hash_key: None,
                data,
                sub_sequence_number: 0,
            }]
        }
    };
    for u in users {
        if aggregated
            && let Some(range) = range
            && effective_hash_key(&u.partition_key, u.explicit_hash_key.as_deref())
                .is_ok_and(|k| !range.contains(k))
        {
            skipped.out_of_range += 1;
            continue;
        }
        out.push(KinesisClientRecord {
            partition_key: u.partition_key,
            explicit_hash_key: u.explicit_hash_key,
            data: u.data,
            sequence_number: sequence_number.clone(),
            sub_sequence_number: u.sub_sequence_number,
            approximate_arrival_timestamp: arrival,
            aggregated,
        });
    }
}

/// Drops user records at or before the checkpoint the shard resumed from: reading restarts AT
/// the checkpointed record, because an aggregate may be only partly done.
#[derive(Debug)]
pub(crate) struct ResumeFilter {
    after: Option<Checkpoint>,
}

impl ResumeFilter {
    pub fn new(start: &Checkpoint) -> Self {
        Self {
            after: matches!(start, Checkpoint::Sequence { .. }).then(|| start.clone()),
        }
    }

    /// Removes already-checkpointed records; returns how many. Once a record passes, every
    /// later one does, and the filter switches itself off.
    pub fn apply(&mut self, records: &mut Vec<KinesisClientRecord>) -> usize {
        let Some(after) = &self.after else { return 0 };
        let before = records.len();
        records.retain(|r| r.position().is_after(after));
        if !records.is_empty() {
            self.after = None;
        }
        before - records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::AggregateBuilder;
    use crate::shards::hash_key;
    use aws_smithy_types::Blob;

    fn record(seq: &str, pk: &str, data: &[u8]) -> Record {
        Record::builder()
            .sequence_number(seq)
            .partition_key(pk)
            .data(Blob::new(data))
            .build()
            .unwrap()
    }

    #[test]
    fn plain_and_aggregated_records() {
        let mut out = Vec::new();
        let mut skipped = Skipped::default();
        user_records(record("1", "a", b"plain"), None, &mut out, &mut skipped);
        let mut b = AggregateBuilder::new(51_200, 10);
        for k in ["x", "y", "z"] {
            assert!(b.try_add(k, None, bytes::Bytes::from(k)));
        }
        let agg = b.finish().unwrap();
        user_records(
            record("2", &agg.partition_key, &agg.data),
            None,
            &mut out,
            &mut skipped,
        );
        let got: Vec<_> = out
            .iter()
            .map(|r| {
                (
                    r.sequence_number.as_str(),
                    r.sub_sequence_number,
                    r.partition_key.as_str(),
                    r.aggregated,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1", 0, "a", false),
                ("2", 0, "x", true),
                ("2", 1, "y", true),
                ("2", 2, "z", true)
            ]
        );
        assert_eq!(skipped, Skipped::default());
    }

    #[test]
    fn aggregated_records_outside_the_shard_range_are_skipped() {
        let half = 1u128 << 127;
        let lower = HashKeyRange {
            start: 0,
            end: half - 1,
        };
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let mut b = AggregateBuilder::new(51_200, 100);
        for k in &keys {
            assert!(b.try_add(k, None, bytes::Bytes::from(k.clone())));
        }
        let agg = b.finish().unwrap();
        let mut out = Vec::new();
        let mut skipped = Skipped::default();
        user_records(
            record("5", &agg.partition_key, &agg.data),
            Some(lower),
            &mut out,
            &mut skipped,
        );
        let expected: Vec<&String> = keys.iter().filter(|k| hash_key(k) < half).collect();
        assert_eq!(
            out.iter().map(|r| &r.partition_key).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(skipped.out_of_range as usize, keys.len() - expected.len());
        // Plain records are never filtered: Kinesis routed them.
        let mut out = Vec::new();
        let outside = keys.iter().find(|k| hash_key(k) >= half).unwrap();
        user_records(
            record("6", outside, b"p"),
            Some(lower),
            &mut out,
            &mut skipped,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn resume_filter_drops_what_was_checkpointed() {
        let rec = |seq: &str, sub: u64| KinesisClientRecord {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: bytes::Bytes::new(),
            sequence_number: seq.into(),
            sub_sequence_number: sub,
            approximate_arrival_timestamp: None,
            aggregated: sub > 0,
        };
        // Checkpointed in the middle of aggregate 20: its records 0..=1 are done.
        let mut f = ResumeFilter::new(&Checkpoint::sequence("20", 1));
        let mut batch = vec![rec("20", 0), rec("20", 1), rec("20", 2), rec("21", 0)];
        assert_eq!(f.apply(&mut batch), 2);
        assert_eq!(
            batch
                .iter()
                .map(|r| (r.sequence_number.as_str(), r.sub_sequence_number))
                .collect::<Vec<_>>(),
            [("20", 2), ("21", 0)]
        );
        // Off after the first record passed.
        let mut later = vec![rec("5", 0)];
        assert_eq!(f.apply(&mut later), 0);
        assert_eq!(
            ResumeFilter::new(&Checkpoint::TrimHorizon).apply(&mut vec![rec("1", 0)]),
            0
        );
    }
}
