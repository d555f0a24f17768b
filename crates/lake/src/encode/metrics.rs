//! Window metrics as Parquet (`curated/order_metrics`). Counts are INT64 (Athena
//! `bigint`; the model's u64 counts above i64::MAX are rejected), `revision` INT64 too
//! (the model's u32 does not fit a signed INT32).

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, AsArray, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Decimal128Type, Int64Type, Schema, TimestampMillisecondType};
use bytes::Bytes;
use flowline_model::{Dimension, Money, Timestamp, WindowMetric};

use super::parquet_io::{
    MONEY_PRECISION, MONEY_SCALE, field, money_type, read_parquet, timestamp_type, write_parquet,
};
use crate::error::LakeError;

const WHAT: &str = "window metrics";

/// The Arrow schema of `curated/order_metrics` files.
pub fn metrics_schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let i = |n: &str| field(n, DataType::Int64, false);
            Arc::new(Schema::new(vec![
                field("id", DataType::Utf8, false),
                field("window_start", timestamp_type(), false),
                field("window_end", timestamp_type(), false),
                field("dimension", DataType::Utf8, false),
                field("key", DataType::Utf8, false),
                i("orders"),
                i("units"),
                field("gross_amount", money_type(), false),
                field("net_amount", money_type(), false),
                field("avg_order_value", money_type(), false),
                i("distinct_customers"),
                i("revision"),
            ]))
        })
        .clone()
}

fn count(v: u64, name: &str) -> Result<i64, LakeError> {
    i64::try_from(v).map_err(|_| LakeError::encode(WHAT, format!("{name} above i64")))
}

/// Encodes metrics as one Parquet file (one row group, Snappy).
pub fn encode_metrics(metrics: &[WindowMetric]) -> Result<Bytes, LakeError> {
    let n = metrics.len();
    let mut id = StringBuilder::with_capacity(n, n * 32);
    let ts = || TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut start, mut end) = (ts(), ts());
    let mut dimension = StringBuilder::with_capacity(n, n * 8);
    let mut key = StringBuilder::with_capacity(n, n * 10);
    let ints = || Int64Builder::with_capacity(n);
    let (mut orders, mut units, mut distinct, mut revision) = (ints(), ints(), ints(), ints());
    let money = || {
        Decimal128Builder::with_capacity(n)
            .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
            .expect("valid decimal precision")
    };
    let (mut gross, mut net, mut avg) = (money(), money(), money());
    for m in metrics {
        id.append_value(&m.id);
        start.append_value(m.window_start.millis());
        end.append_value(m.window_end.millis());
        dimension.append_value(m.dimension.as_str());
        key.append_value(&m.key);
        orders.append_value(count(m.orders, "orders")?);
        units.append_value(count(m.units, "units")?);
        gross.append_value(i128::from(m.gross_amount.cents()));
        net.append_value(i128::from(m.net_amount.cents()));
        avg.append_value(i128::from(m.avg_order_value.cents()));
        distinct.append_value(count(m.distinct_customers, "distinct_customers")?);
        revision.append_value(i64::from(m.revision));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(dimension.finish()),
        Arc::new(key.finish()),
        Arc::new(orders.finish()),
        Arc::new(units.finish()),
        Arc::new(gross.finish()),
        Arc::new(net.finish()),
        Arc::new(avg.finish()),
        Arc::new(distinct.finish()),
        Arc::new(revision.finish()),
    ];
    let batch =
        RecordBatch::try_new(metrics_schema(), columns).map_err(|e| LakeError::encode(WHAT, e))?;
    write_parquet(&batch, &["id"], WHAT)
}

/// Reads a `curated/order_metrics` file back.
pub fn decode_metrics(bytes: Bytes) -> Result<Vec<WindowMetric>, LakeError> {
    let mut out = Vec::new();
    for b in read_parquet(bytes, &metrics_schema(), WHAT)? {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let int = |i: usize| b.column(i).as_primitive::<Int64Type>();
        let time = |i: usize, row: usize| {
            Timestamp::from_millis(
                b.column(i)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row),
            )
            .ok_or_else(|| LakeError::encode(WHAT, "time out of range"))
        };
        let money = |i: usize, row: usize| {
            Money::from_cents(b.column(i).as_primitive::<Decimal128Type>().value(row) as i64)
                .ok_or_else(|| LakeError::encode(WHAT, "money out of range"))
        };
        let unsigned = |i: usize, row: usize| {
            u64::try_from(int(i).value(row)).map_err(|_| LakeError::encode(WHAT, "negative count"))
        };
        for row in 0..b.num_rows() {
            let dim = s(3).value(row);
            out.push(WindowMetric {
                id: s(0).value(row).to_string(),
                window_start: time(1, row)?,
                window_end: time(2, row)?,
                dimension: Dimension::parse(dim)
                    .ok_or_else(|| LakeError::encode(WHAT, format!("dimension {dim:?}")))?,
                key: s(4).value(row).to_string(),
                orders: unsigned(5, row)?,
                units: unsigned(6, row)?,
                gross_amount: money(7, row)?,
                net_amount: money(8, row)?,
                avg_order_value: money(9, row)?,
                distinct_customers: unsigned(10, row)?,
                revision: u32::try_from(int(11).value(row))
                    .map_err(|_| LakeError::encode(WHAT, "revision out of range"))?,
            });
        }
    }
    Ok(out)
}
