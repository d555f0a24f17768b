//! The KPL aggregation protobuf messages, hand-written for prost (proto2, as in the KPL's
//! `messages.proto`). Field numbers and `required` markers must match the official schema:
//! required fields are always encoded, which other (strict) proto2 parsers insist on.

/// `AggregatedRecord` of the KPL format.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// One user record inside an [`AggregatedRecord`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", required, tag = "3")]
    pub data: bytes::Bytes,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// Record tag (part of the format, unused by the KPL itself; kept so we parse it).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tag {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}
