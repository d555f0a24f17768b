//! Incremental construction of one aggregated record with exact size accounting.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use prost::Message;

use super::{DIGEST_LEN, MAGIC, proto};

/// Builds one aggregated record. Sizes are computed exactly (protobuf encoding lengths), so an
/// aggregate never exceeds `max_bytes` once finished.
#[derive(Debug)]
pub struct AggregateBuilder {
    max_bytes: usize,
    max_records: usize,
    message: proto::AggregatedRecord,
    pk_index: HashMap<String, u64>,
    ehk_index: HashMap<String, u64>,
    /// Encoded protobuf length so far.
    body_len: usize,
}

/// A finished aggregate: what goes into one PutRecords entry.
#[derive(Debug, Clone)]
pub struct FinishedAggregate {
    /// The first user record's partition key (routes the aggregate to that record's shard).
    pub partition_key: String,
    /// The first user record's explicit hash key, if it had one.
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
    pub user_records: usize,
}

fn varint_len(v: u64) -> usize {
    prost::encoding::encoded_len_varint(v)
}

/// Length of a length-delimited field (1-byte tag + length varint + payload).
fn field_len(payload: usize) -> usize {
    1 + varint_len(payload as u64) + payload
}

impl AggregateBuilder {
    pub fn new(max_bytes: usize, max_records: usize) -> Self {
        Self {
            max_bytes,
            max_records: max_records.max(1),
            message: proto::AggregatedRecord::default(),
            pk_index: HashMap::new(),
            ehk_index: HashMap::new(),
            body_len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.message.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message.records.is_empty()
    }

    /// Size of the finished record's data (magic + protobuf + digest).
    pub fn size_bytes(&self) -> usize {
        MAGIC.len() + self.body_len + DIGEST_LEN
    }

    /// Bytes the record would add to the protobuf body.
    fn added_len(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data_len: usize,
    ) -> usize {
        let mut added = 0;
        let pk_idx = match self.pk_index.get(partition_key) {
            Some(&i) => i,
            None => {
                added += field_len(partition_key.len());
                self.pk_index.len() as u64
            }
        };
        let mut inner = 1 + varint_len(pk_idx) + field_len(data_len);
        if let Some(ehk) = explicit_hash_key {
            let ehk_idx = match self.ehk_index.get(ehk) {
                Some(&i) => i,
                None => {
                    added += field_len(ehk.len());
                    self.ehk_index.len() as u64
                }
            };
            inner += 1 + varint_len(ehk_idx);
        }
        added + field_len(inner)
    }

    /// Size the data of an aggregate holding just this record would have.
    pub fn single_record_size(
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data_len: usize,
    ) -> usize {
        Self::new(usize::MAX, 1).added_len(partition_key, explicit_hash_key, data_len)
            + MAGIC.len()
            + DIGEST_LEN
    }

    /// Adds the record if it fits (by size and count). Returns false, leaving the builder
    /// unchanged, when it does not; an empty builder accepts any record so oversized records
    /// are the caller's decision (check with [`Self::single_record_size`]).
    pub fn try_add(
        &mut self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: Bytes,
    ) -> bool {
        let added = self.added_len(partition_key, explicit_hash_key, data.len());
        if !self.is_empty()
            && (self.len() >= self.max_records || self.size_bytes() + added > self.max_bytes)
        {
            return false;
        }
        let pk_idx = match self.pk_index.get(partition_key) {
            Some(&i) => i,
            None => {
                let i = self.message.partition_key_table.len() as u64;
                self.message
                    .partition_key_table
                    .push(partition_key.to_owned());
                self.pk_index.insert(partition_key.to_owned(), i);
                i
            }
        };
        let ehk_idx = explicit_hash_key.map(|ehk| match self.ehk_index.get(ehk) {
            Some(&i) => i,
            None => {
                let i = self.message.explicit_hash_key_table.len() as u64;
                self.message.explicit_hash_key_table.push(ehk.to_owned());
                self.ehk_index.insert(ehk.to_owned(), i);
                i
            }
        });
        self.message.records.push(proto::Record {
            partition_key_index: pk_idx,
            explicit_hash_key_index: ehk_idx,
            data,
            tags: Vec::new(),
        });
        self.body_len += added;
        debug_assert_eq!(self.body_len, self.message.encoded_len());
        true
    }

    /// Serializes the aggregate and resets the builder. Returns None when empty.
    pub fn finish(&mut self) -> Option<FinishedAggregate> {
        if self.is_empty() {
            return None;
        }
        let message = std::mem::take(&mut self.message);
        self.pk_index.clear();
        self.ehk_index.clear();
        let body_len = std::mem::take(&mut self.body_len);

        let mut buf = BytesMut::with_capacity(MAGIC.len() + body_len + DIGEST_LEN);
        buf.put_slice(&MAGIC);
        message
            .encode(&mut buf)
            .expect("buffer has exactly the encoded capacity");
        let digest = Md5::digest(&buf[MAGIC.len()..]);
        buf.put_slice(&digest);

        let first = &message.records[0];
        let partition_key = message.partition_key_table[first.partition_key_index as usize].clone();
        let explicit_hash_key = first
            .explicit_hash_key_index
            .map(|i| message.explicit_hash_key_table[i as usize].clone());
        Some(FinishedAggregate {
            partition_key,
            explicit_hash_key,
            data: buf.freeze(),
            user_records: message.records.len(),
        })
    }
}
