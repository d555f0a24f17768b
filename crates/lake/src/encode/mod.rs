//! File encoders: Parquet for curated data, gzip JSON Lines for raw records and errors.
//!
//! Every Parquet file is one row group (one file per flushed buffer, so a reader never
//! sees a half-written group), Snappy-compressed, with dictionary encoding on (the
//! writer's default) except for columns that are unique per row, where a dictionary
//! only costs time before the writer falls back to plain.

mod jsonl;
mod metrics;
mod orders;
mod parquet_io;

use bytes::Bytes;

use crate::error::LakeError;
use crate::item::Payload;
use crate::layout::{Dataset, PrefixKind};

pub use jsonl::{JsonLinesGz, decode_jsonl_gz, encode_dead_letters};
pub use metrics::{decode_metrics, encode_metrics, metrics_schema};
pub use orders::{decode_orders, encode_orders, orders_schema};

/// Encodes a buffer in its dataset's format.
pub fn encode_object(
    dataset: &Dataset,
    payloads: Vec<Payload>,
    gzip_level: u32,
) -> Result<Bytes, LakeError> {
    let mismatch = || {
        LakeError::encode(
            "object",
            format!("a record does not belong to {}", dataset.prefix()),
        )
    };
    match (dataset.kind(), dataset) {
        (PrefixKind::Curated, Dataset::CuratedOrders) => {
            let orders = payloads
                .into_iter()
                .map(|p| match p {
                    Payload::Order(o) => Ok(*o),
                    _ => Err(mismatch()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            encode_orders(orders)
        }
        (PrefixKind::Curated, _) => {
            let metrics = payloads
                .into_iter()
                .map(|p| match p {
                    Payload::Metric(m) => Ok(m),
                    _ => Err(mismatch()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            encode_metrics(&metrics)
        }
        (PrefixKind::Raw, _) => {
            let mut w = JsonLinesGz::new(gzip_level, payloads.len() * 64);
            for p in payloads {
                match p {
                    Payload::Raw(b) => w.push(&b)?,
                    _ => return Err(mismatch()),
                }
            }
            w.finish()
        }
        (PrefixKind::Errors, _) => {
            let letters = payloads
                .into_iter()
                .map(|p| match p {
                    Payload::Error(d) => Ok(*d),
                    _ => Err(mismatch()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            encode_dead_letters(&letters, gzip_level)
        }
    }
}

#[cfg(test)]
mod tests;
