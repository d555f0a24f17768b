//! What the producer put on the raw streams, read back from the streams themselves, and
//! the reference data it uploaded: the input of the recomputation.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, bail};
use flowline_model::error_types;
use flowline_testkit::{StreamRecord, read_stream};
use serde::Deserialize;

use crate::configs::Names;

/// The raw streams, unprefixed.
pub const RAW_STREAMS: [&str; 3] = ["customers", "addresses", "sales"];

/// Where the generator marks a deliberately bad record: `{"_bad":"<kind>"` at its start
/// (also for malformed JSON, whose bytes start with that prefix).
const BAD_PREFIX: &[u8] = b"{\"_bad\":\"";

/// The generator's marker of a bad record, if `data` is one.
pub fn bad_marker(data: &[u8]) -> Option<String> {
    let rest = data.strip_prefix(BAD_PREFIX)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// The `error_type` DESIGN.md gives each kind of bad record.
pub fn expected_error_type(marker: &str) -> anyhow::Result<&'static str> {
    Ok(match marker {
        "malformed_json" => error_types::BAD_JSON,
        "missing_field" => error_types::MISSING_FIELD,
        "wrong_type" => error_types::BAD_FIELD,
        "unknown_type" => error_types::UNKNOWN_TYPE,
        "oversized" => error_types::OVERSIZED,
        other => bail!("unknown bad-record marker {other:?}"),
    })
}

/// Every user record of the raw streams, by unprefixed stream name.
pub struct RawData {
    pub streams: BTreeMap<&'static str, Vec<StreamRecord>>,
}

impl RawData {
    pub async fn read(kinesis: &aws_sdk_kinesis::Client, names: &Names) -> anyhow::Result<Self> {
        let mut streams = BTreeMap::new();
        for s in RAW_STREAMS {
            let records = read_stream(kinesis, &names.stream(s))
                .await
                .with_context(|| format!("reading back {s}"))?;
            streams.insert(s, records);
        }
        Ok(RawData { streams })
    }

    /// Good records as JSON, by stream.
    pub fn good(&self, stream: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        self.streams[stream]
            .iter()
            .filter(|r| bad_marker(&r.data).is_none())
            .map(|r| {
                serde_json::from_slice(&r.data).with_context(|| {
                    format!(
                        "unmarked record of {stream} is not JSON: {}",
                        String::from_utf8_lossy(&r.data)
                    )
                })
            })
            .collect()
    }

    /// Bad records with their unprefixed stream and marker.
    pub fn bad(&self) -> Vec<(&'static str, &StreamRecord, String)> {
        let mut out = Vec::new();
        for (stream, records) in &self.streams {
            for r in records {
                if let Some(marker) = bad_marker(&r.data) {
                    out.push((*stream, r, marker));
                }
            }
        }
        out
    }

    /// Records that repeat an earlier record of their stream byte for byte (a producer
    /// retry after an unanswered put: Kinesis delivers at least once).
    pub fn repeats(&self) -> usize {
        self.streams
            .values()
            .map(|records| {
                let distinct: std::collections::BTreeSet<&[u8]> =
                    records.iter().map(|r| r.data.as_slice()).collect();
                records.len() - distinct.len()
            })
            .sum()
    }

    pub fn total(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ItemRow {
    pub item_id: String,
    pub name: String,
    pub category: String,
    pub brand: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PromoRow {
    pub promo_id: String,
    pub item_id: String,
    /// Percent as written, e.g. `12.5`.
    pub discount_pct: String,
    pub starts_at: String,
    pub ends_at: String,
}

/// Items and promos as uploaded to the bucket (raw CSV layer).
pub struct Reference {
    pub items: HashMap<String, ItemRow>,
    pub promos: HashMap<String, PromoRow>,
}

async fn get_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("getting s3://{bucket}/{key}"))?;
    Ok(out.body.collect().await?.into_bytes().to_vec())
}

fn rows<T: for<'de> Deserialize<'de>>(data: &[u8]) -> anyhow::Result<Vec<T>> {
    let mut r = csv::Reader::from_reader(data);
    r.deserialize()
        .collect::<Result<Vec<T>, _>>()
        .context("parsing reference CSV")
}

impl Reference {
    pub async fn read(s3: &aws_sdk_s3::Client, names: &Names) -> anyhow::Result<Self> {
        let bucket = names.bucket();
        let items: Vec<ItemRow> =
            rows(&get_object(s3, &bucket, "reference/raw/items/items.csv").await?)?;
        let promos: Vec<PromoRow> =
            rows(&get_object(s3, &bucket, "reference/raw/promos/promos.csv").await?)?;
        if items.is_empty() {
            bail!("no items in the reference data");
        }
        Ok(Reference {
            items: items.into_iter().map(|i| (i.item_id.clone(), i)).collect(),
            promos: promos
                .into_iter()
                .map(|p| (p.promo_id.clone(), p))
                .collect(),
        })
    }
}
