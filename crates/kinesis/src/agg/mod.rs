//! The KPL aggregation format: many user records packed into one Kinesis record.
//!
//! Layout (see the KPL's `aggregation-format.md`): 4 magic bytes `F3 89 9A C2`, a protobuf
//! `AggregatedRecord`, then the MD5 digest of the protobuf bytes. The producer builds aggregates
//! with [`AggregateBuilder`]; consumers split them with [`deaggregate`].

mod builder;
pub mod proto;

pub use builder::{AggregateBuilder, FinishedAggregate};

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use crate::{Error, Result};

/// Leading bytes of every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 trailer.
pub const DIGEST_LEN: usize = 16;
/// The KPL's default `AggregationMaxSize`.
pub const DEFAULT_MAX_AGGREGATE_BYTES: usize = 51_200;

/// One user record, as put by a producer (possibly inside an aggregate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
    /// Position inside the aggregate (0 for a record that was not aggregated).
    pub sub_sequence_number: u64,
}

/// True when `data` is a well-formed aggregate envelope: magic, a non-empty body and a matching
/// MD5 trailer. Like the KCL and the official deaggregators, a record whose digest does not match
/// is treated as a plain record that happens to start with the magic bytes.
pub fn is_aggregated(data: &[u8]) -> bool {
    aggregate_body(data).is_some()
}

/// Returns the protobuf body when `data` is an aggregate envelope with a valid digest.
fn aggregate_body(data: &[u8]) -> Option<std::ops::Range<usize>> {
    // The official libraries require a body longer than the digest alone.
    if data.len() <= MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let body = MAGIC.len()..data.len() - DIGEST_LEN;
    let digest = Md5::digest(&data[body.clone()]);
    (digest.as_slice() == &data[body.end..]).then_some(body)
}

/// Deaggregates a Kinesis record: Ok(records) for an aggregated record (verifies magic + MD5),
/// or the record itself as one UserRecord (sub_sequence_number 0) when not aggregated.
///
/// An envelope with a valid digest whose protobuf cannot be decoded, or whose records point
/// outside the key tables, is corrupt and returns [`Error::Aggregation`].
pub fn deaggregate(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: Bytes,
) -> Result<Vec<UserRecord>> {
    let Some(body) = aggregate_body(&data) else {
        return Ok(vec![UserRecord {
            partition_key: partition_key.to_owned(),
            explicit_hash_key: explicit_hash_key.map(str::to_owned),
            data,
            sub_sequence_number: 0,
        }]);
    };
    // Decoding from `Bytes` makes each record's data a zero-copy slice of the input.
    let aggregate = proto::AggregatedRecord::decode(data.slice(body))
        .map_err(|e| Error::Aggregation(format!("protobuf decode: {e}")))?;
    let proto::AggregatedRecord {
        partition_key_table: pks,
        explicit_hash_key_table: ehks,
        records,
    } = aggregate;
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let pk = usize::try_from(r.partition_key_index)
                .ok()
                .and_then(|idx| pks.get(idx))
                .ok_or_else(|| {
                    Error::Aggregation(format!(
                        "record {i}: partition key index {} outside table of {}",
                        r.partition_key_index,
                        pks.len()
                    ))
                })?;
            // An index into an empty table is ignored, as the official deaggregators do.
            let ehk = match r.explicit_hash_key_index {
                Some(idx) if !ehks.is_empty() => Some(
                    usize::try_from(idx)
                        .ok()
                        .and_then(|idx| ehks.get(idx))
                        .cloned()
                        .ok_or_else(|| {
                            Error::Aggregation(format!(
                                "record {i}: explicit hash key index {idx} outside table of {}",
                                ehks.len()
                            ))
                        })?,
                ),
                _ => None,
            };
            Ok(UserRecord {
                partition_key: pk.clone(),
                explicit_hash_key: ehk,
                data: r.data,
                sub_sequence_number: i as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
