//! Shared Parquet writing and reading.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::LakeError;

/// Precision and scale of money columns: DECIMAL(18,2) holds every amount the model
/// allows (|cents| <= 10^15) exactly, and fits Parquet's INT64 physical type, which
/// Athena, DuckDB, Spark and pyarrow all read as a decimal.
pub(crate) const MONEY_PRECISION: u8 = 18;
pub(crate) const MONEY_SCALE: i8 = 2;
/// A discount percentage: 0.00 to 100.00.
pub(crate) const PCT_PRECISION: u8 = 5;

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub(crate) fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

pub(crate) fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// Writes `batch` as one Snappy row group. `unique_columns` get no dictionary.
pub(crate) fn write_parquet(
    batch: &RecordBatch,
    unique_columns: &[&str],
    what: &'static str,
) -> Result<Bytes, LakeError> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .set_created_by(concat!("flowline-lake ", env!("CARGO_PKG_VERSION")).to_string());
    for c in unique_columns {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 3);
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props.build()))
        .map_err(|e| LakeError::encode(what, e))?;
    writer
        .write(batch)
        .map_err(|e| LakeError::encode(what, e))?;
    writer.close().map_err(|e| LakeError::encode(what, e))?;
    Ok(Bytes::from(out))
}

/// Reads every batch of a Parquet file, checking it has the expected schema.
pub(crate) fn read_parquet(
    bytes: Bytes,
    schema: &Arc<Schema>,
    what: &'static str,
) -> Result<Vec<RecordBatch>, LakeError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| LakeError::encode(what, e))?
        .build()
        .map_err(|e| LakeError::encode(what, e))?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| LakeError::encode(what, e))?;
        if batch.schema().fields() != schema.fields() {
            return Err(LakeError::encode(what, "unexpected schema"));
        }
        batches.push(batch);
    }
    Ok(batches)
}
