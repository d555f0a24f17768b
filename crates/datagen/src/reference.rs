//! Reference files: items and promos as CSV (raw layer) and Parquet with
//! Snappy (clean layer), and the S3 keys of DESIGN.md section 2.
//!
//! Both decoders validate every row with the model, so a service loading
//! reference data gets the same guarantees as for events.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, Schema, TimeUnit, TimestampMillisecondType,
};
use bytes::Bytes;
use flowline_model::{Item, ParseConfig, Promo, Record};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::DatagenError;
use crate::tabular::row_to_json;

pub const ITEMS_CSV_KEY: &str = "reference/raw/items/items.csv";
pub const PROMOS_CSV_KEY: &str = "reference/raw/promos/promos.csv";
pub const ITEMS_PARQUET_KEY: &str = "reference/clean/items/items.parquet";
pub const PROMOS_PARQUET_KEY: &str = "reference/clean/promos/promos.parquet";

/// Money columns: Decimal128 with 2 decimals, wide enough for the model's range.
const MONEY: DataType = DataType::Decimal128(18, 2);
const PERCENT: DataType = DataType::Decimal128(5, 2);

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub fn items_schema() -> Schema {
    Schema::new(vec![
        Field::new("item_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("brand", DataType::Utf8, false),
        Field::new("list_price", MONEY, false),
    ])
}

pub fn promos_schema() -> Schema {
    Schema::new(vec![
        Field::new("promo_id", DataType::Utf8, false),
        Field::new("item_id", DataType::Utf8, false),
        Field::new("discount_pct", PERCENT, false),
        Field::new("starts_at", utc_millis(), false),
        Field::new("ends_at", utc_millis(), false),
    ])
}

pub fn items_to_csv(items: &[Item]) -> Result<Vec<u8>, DatagenError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(Item::FIELDS.iter().map(|f| f.name))?;
    for i in items {
        let price = i.list_price.to_string();
        w.write_record([&i.item_id, &i.name, &i.category, &i.brand, &price])?;
    }
    w.into_inner().map_err(|e| DatagenError::Io(e.into_error()))
}

pub fn promos_to_csv(promos: &[Promo]) -> Result<Vec<u8>, DatagenError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(Promo::FIELDS.iter().map(|f| f.name))?;
    for p in promos {
        let (pct, start, end) = (
            p.discount_pct.to_string(),
            p.starts_at.to_string(),
            p.ends_at.to_string(),
        );
        w.write_record([&p.promo_id, &p.item_id, &pct, &start, &end])?;
    }
    w.into_inner().map_err(|e| DatagenError::Io(e.into_error()))
}

/// Reads a CSV with header; every row must be valid (reference data is all
/// or nothing: a half-loaded catalogue would silently mis-join).
pub fn from_csv<T: Record>(data: &[u8]) -> Result<Vec<T>, DatagenError> {
    let parser = ParseConfig::default();
    let mut r = csv::Reader::from_reader(data);
    let headers = r.headers()?.clone();
    let mut out = Vec::new();
    for row in r.records() {
        let row = row?;
        let line = row.position().map_or(0, |p| p.line());
        let json = row_to_json(T::FIELDS, &headers, &row);
        let value = parser
            .parse::<T>(&json)
            .map_err(|e| DatagenError::BadData(format!("line {line}: {e}")))?;
        out.push(value);
    }
    Ok(out)
}

pub fn items_from_csv(data: &[u8]) -> Result<Vec<Item>, DatagenError> {
    from_csv(data)
}

pub fn promos_from_csv(data: &[u8]) -> Result<Vec<Promo>, DatagenError> {
    from_csv(data)
}

fn write_parquet(batch: &RecordBatch) -> Result<Vec<u8>, DatagenError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(out)
}

pub fn items_to_parquet(items: &[Item]) -> Result<Vec<u8>, DatagenError> {
    let strings = |f: fn(&Item) -> &str| {
        Arc::new(StringArray::from_iter_values(items.iter().map(f))) as ArrayRef
    };
    let prices =
        Decimal128Array::from_iter_values(items.iter().map(|i| i128::from(i.list_price.cents())))
            .with_data_type(MONEY);
    let batch = RecordBatch::try_new(
        Arc::new(items_schema()),
        vec![
            strings(|i| &i.item_id),
            strings(|i| &i.name),
            strings(|i| &i.category),
            strings(|i| &i.brand),
            Arc::new(prices),
        ],
    )?;
    write_parquet(&batch)
}

pub fn promos_to_parquet(promos: &[Promo]) -> Result<Vec<u8>, DatagenError> {
    let strings = |f: fn(&Promo) -> &str| {
        Arc::new(StringArray::from_iter_values(promos.iter().map(f))) as ArrayRef
    };
    let times = |f: fn(&Promo) -> i64| {
        Arc::new(
            TimestampMillisecondArray::from_iter_values(promos.iter().map(f)).with_timezone("UTC"),
        ) as ArrayRef
    };
    let pcts = Decimal128Array::from_iter_values(
        promos
            .iter()
            .map(|p| i128::from(p.discount_pct.hundredths())),
    )
    .with_data_type(PERCENT);
    let batch = RecordBatch::try_new(
        Arc::new(promos_schema()),
        vec![
            strings(|p| &p.promo_id),
            strings(|p| &p.item_id),
            Arc::new(pcts),
            times(|p| p.starts_at.millis()),
            times(|p| p.ends_at.millis()),
        ],
    )?;
    write_parquet(&batch)
}

fn read_parquet(data: &[u8], expected: &Schema) -> Result<Vec<RecordBatch>, DatagenError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(data))?.build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    for b in &batches {
        for f in expected.fields() {
            let col = b.column_by_name(f.name()).ok_or_else(|| {
                DatagenError::BadData(format!("parquet: column \"{}\" missing", f.name()))
            })?;
            if col.data_type() != f.data_type() {
                return Err(DatagenError::BadData(format!(
                    "parquet: column \"{}\" is {}, expected {}",
                    f.name(),
                    col.data_type(),
                    f.data_type()
                )));
            }
            if col.null_count() > 0 {
                return Err(DatagenError::BadData(format!(
                    "parquet: column \"{}\" has nulls",
                    f.name()
                )));
            }
        }
    }
    Ok(batches)
}

/// Re-validates a decoded value with the model's rules (one definition).
fn validated<T: Record>(value: T, row: usize) -> Result<T, DatagenError> {
    let json = serde_json::to_vec(&value).map_err(|e| DatagenError::BadData(e.to_string()))?;
    ParseConfig::default()
        .parse::<T>(&json)
        .map_err(|e| DatagenError::BadData(format!("parquet row {row}: {e}")))
}

pub fn items_from_parquet(data: &[u8]) -> Result<Vec<Item>, DatagenError> {
    let mut out = Vec::new();
    for b in read_parquet(data, &items_schema())? {
        let s = |n: &str| {
            b.column_by_name(n)
                .expect("checked")
                .as_string::<i32>()
                .clone()
        };
        let (id, name, cat, brand) = (s("item_id"), s("name"), s("category"), s("brand"));
        let price = b
            .column_by_name("list_price")
            .expect("checked")
            .as_primitive::<Decimal128Type>();
        for r in 0..b.num_rows() {
            let item = Item {
                item_id: id.value(r).to_string(),
                name: name.value(r).to_string(),
                category: cat.value(r).to_string(),
                brand: brand.value(r).to_string(),
                list_price: money(price.value(r), out.len())?,
            };
            out.push(validated(item, out.len())?);
        }
    }
    Ok(out)
}

pub fn promos_from_parquet(data: &[u8]) -> Result<Vec<Promo>, DatagenError> {
    let mut out = Vec::new();
    for b in read_parquet(data, &promos_schema())? {
        let s = |n: &str| {
            b.column_by_name(n)
                .expect("checked")
                .as_string::<i32>()
                .clone()
        };
        let t = |n: &str| {
            b.column_by_name(n)
                .expect("checked")
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        };
        let (id, item, starts, ends) = (s("promo_id"), s("item_id"), t("starts_at"), t("ends_at"));
        let pct = b
            .column_by_name("discount_pct")
            .expect("checked")
            .as_primitive::<Decimal128Type>();
        for r in 0..b.num_rows() {
            let row = out.len();
            let bad = |what: &str| {
                DatagenError::BadData(format!("parquet row {row}: {what} out of range"))
            };
            let promo = Promo {
                promo_id: id.value(r).to_string(),
                item_id: item.value(r).to_string(),
                discount_pct: u32::try_from(pct.value(r))
                    .ok()
                    .and_then(flowline_model::DiscountPct::from_hundredths)
                    .ok_or_else(|| bad("discount_pct"))?,
                starts_at: flowline_model::Timestamp::from_millis(starts.value(r))
                    .ok_or_else(|| bad("starts_at"))?,
                ends_at: flowline_model::Timestamp::from_millis(ends.value(r))
                    .ok_or_else(|| bad("ends_at"))?,
            };
            out.push(validated(promo, row)?);
        }
    }
    Ok(out)
}

fn money(cents: i128, row: usize) -> Result<flowline_model::Money, DatagenError> {
    i64::try_from(cents)
        .ok()
        .and_then(flowline_model::Money::from_cents)
        .ok_or_else(|| DatagenError::BadData(format!("parquet row {row}: money out of range")))
}
