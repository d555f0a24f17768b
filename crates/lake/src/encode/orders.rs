//! Enriched orders as Parquet (`curated/orders`).
//!
//! Columns follow the event model one to one, in its field order. `location` is a
//! nullable struct `{lat: double, lon: double}` (Athena `struct<lat:double,lon:double>`),
//! `missing` a non-null `list<string>`, money DECIMAL(18,2), `discount_pct`
//! DECIMAL(5,2), times TIMESTAMP(MILLIS, UTC), `quantity` INT32.

use std::borrow::Borrow;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Float64Builder, Int32Builder, ListBuilder,
    RecordBatch, StringBuilder, StructArray, TimestampMillisecondBuilder,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::TimestampMillisecondType;
use arrow::datatypes::{DataType, Decimal128Type, Field, Fields, Float64Type, Int32Type, Schema};
use bytes::Bytes;
use flowline_model::{DiscountPct, EnrichedOrder, GeoPoint, JoinStatus, Missing, Money, Timestamp};

use super::parquet_io::{
    MONEY_PRECISION, MONEY_SCALE, PCT_PRECISION, field, money_type, read_parquet, timestamp_type,
    write_parquet,
};
use crate::error::LakeError;

const WHAT: &str = "enriched orders";

fn location_fields() -> Fields {
    Fields::from(vec![
        field("lat", DataType::Float64, false),
        field("lon", DataType::Float64, false),
    ])
}

fn missing_item() -> Arc<Field> {
    Arc::new(field("item", DataType::Utf8, false))
}

/// The Arrow schema of `curated/orders` files.
pub fn orders_schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let s = |n: &str| field(n, DataType::Utf8, false);
            let ns = |n: &str| field(n, DataType::Utf8, true);
            Arc::new(Schema::new(vec![
                s("order_id"),
                field("event_time", timestamp_type(), false),
                s("customer_id"),
                ns("customer_segment"),
                ns("email_sha256"),
                ns("address_id"),
                ns("city"),
                ns("state"),
                ns("postcode"),
                ns("country"),
                field("location", DataType::Struct(location_fields()), true),
                s("item_id"),
                ns("item_name"),
                ns("category"),
                ns("brand"),
                ns("promo_id"),
                field(
                    "discount_pct",
                    DataType::Decimal128(PCT_PRECISION, MONEY_SCALE),
                    false,
                ),
                field("quantity", DataType::Int32, false),
                field("unit_price", money_type(), false),
                field("gross_amount", money_type(), false),
                field("discount_amount", money_type(), false),
                field("net_amount", money_type(), false),
                s("join_status"),
                field("missing", DataType::List(missing_item()), false),
                field("enriched_at", timestamp_type(), false),
            ]))
        })
        .clone()
}

struct Strings(StringBuilder);

impl Strings {
    fn new(rows: usize, avg_len: usize) -> Self {
        Strings(StringBuilder::with_capacity(rows, rows * avg_len))
    }
    fn finish(mut self) -> ArrayRef {
        Arc::new(self.0.finish())
    }
}

fn timestamps(rows: usize) -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC")
}

fn decimals(rows: usize, precision: u8) -> Decimal128Builder {
    Decimal128Builder::with_capacity(rows)
        .with_precision_and_scale(precision, MONEY_SCALE)
        .expect("valid decimal precision")
}

/// Encodes orders as one Parquet file (one row group, Snappy). Given owned orders (the
/// archiver's buffer), each is dropped once its row is in the columns, so a large buffer
/// is not held twice while it is encoded.
pub fn encode_orders<I>(orders: I) -> Result<Bytes, LakeError>
where
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: Borrow<EnrichedOrder>,
{
    let orders = orders.into_iter();
    let n = orders.len();
    let mut order_id = Strings::new(n, 16);
    let mut event_time = timestamps(n);
    let mut customer_id = Strings::new(n, 12);
    let mut segment = Strings::new(n, 8);
    let mut email = Strings::new(n, 64);
    let mut address_id = Strings::new(n, 12);
    let mut city = Strings::new(n, 10);
    let mut state = Strings::new(n, 4);
    let mut postcode = Strings::new(n, 6);
    let mut country = Strings::new(n, 4);
    let (mut lat, mut lon) = (
        Float64Builder::with_capacity(n),
        Float64Builder::with_capacity(n),
    );
    let mut location_valid = Vec::with_capacity(n);
    let mut item_id = Strings::new(n, 10);
    let mut item_name = Strings::new(n, 16);
    let mut category = Strings::new(n, 10);
    let mut brand = Strings::new(n, 10);
    let mut promo_id = Strings::new(n, 8);
    let mut discount_pct = decimals(n, PCT_PRECISION);
    let mut quantity = Int32Builder::with_capacity(n);
    let mut unit_price = decimals(n, MONEY_PRECISION);
    let mut gross = decimals(n, MONEY_PRECISION);
    let mut discount = decimals(n, MONEY_PRECISION);
    let mut net = decimals(n, MONEY_PRECISION);
    let mut join_status = Strings::new(n, 8);
    let mut missing =
        ListBuilder::with_capacity(StringBuilder::new(), n).with_field(missing_item());
    let mut enriched_at = timestamps(n);

    for o in orders {
        let o = o.borrow();
        order_id.0.append_value(&o.order_id);
        event_time.append_value(o.event_time.millis());
        customer_id.0.append_value(&o.customer_id);
        segment.0.append_option(o.customer_segment.as_deref());
        email.0.append_option(o.email_sha256.as_deref());
        address_id.0.append_option(o.address_id.as_deref());
        city.0.append_option(o.city.as_deref());
        state.0.append_option(o.state.as_deref());
        postcode.0.append_option(o.postcode.as_deref());
        country.0.append_option(o.country.as_deref());
        // Children of a null struct slot still need a value; 0 is never read.
        let p = o.location.unwrap_or(GeoPoint { lat: 0.0, lon: 0.0 });
        lat.append_value(p.lat);
        lon.append_value(p.lon);
        location_valid.push(o.location.is_some());
        item_id.0.append_value(&o.item_id);
        item_name.0.append_option(o.item_name.as_deref());
        category.0.append_option(o.category.as_deref());
        brand.0.append_option(o.brand.as_deref());
        promo_id.0.append_option(o.promo_id.as_deref());
        discount_pct.append_value(i128::from(o.discount_pct.hundredths()));
        let q =
            i32::try_from(o.quantity).map_err(|_| LakeError::encode(WHAT, "quantity above i32"))?;
        quantity.append_value(q);
        unit_price.append_value(i128::from(o.unit_price.cents()));
        gross.append_value(i128::from(o.gross_amount.cents()));
        discount.append_value(i128::from(o.discount_amount.cents()));
        net.append_value(i128::from(o.net_amount.cents()));
        join_status.0.append_value(o.join_status.as_str());
        for m in &o.missing {
            missing.values().append_value(m.as_str());
        }
        missing.append(true);
        enriched_at.append_value(o.enriched_at.millis());
    }

    let location = StructArray::try_new(
        location_fields(),
        vec![Arc::new(lat.finish()), Arc::new(lon.finish())],
        Some(NullBuffer::from(location_valid)),
    )
    .map_err(|e| LakeError::encode(WHAT, e))?;
    let columns: Vec<ArrayRef> = vec![
        order_id.finish(),
        Arc::new(event_time.finish()),
        customer_id.finish(),
        segment.finish(),
        email.finish(),
        address_id.finish(),
        city.finish(),
        state.finish(),
        postcode.finish(),
        country.finish(),
        Arc::new(location),
        item_id.finish(),
        item_name.finish(),
        category.finish(),
        brand.finish(),
        promo_id.finish(),
        Arc::new(discount_pct.finish()),
        Arc::new(quantity.finish()),
        Arc::new(unit_price.finish()),
        Arc::new(gross.finish()),
        Arc::new(discount.finish()),
        Arc::new(net.finish()),
        join_status.finish(),
        Arc::new(missing.finish()),
        Arc::new(enriched_at.finish()),
    ];
    let batch =
        RecordBatch::try_new(orders_schema(), columns).map_err(|e| LakeError::encode(WHAT, e))?;
    // Order ids and email hashes are (nearly) unique per row.
    write_parquet(&batch, &["order_id", "email_sha256"], WHAT)
}

/// Reads a `curated/orders` file back into orders (replays, checks, tests).
pub fn decode_orders(bytes: Bytes) -> Result<Vec<EnrichedOrder>, LakeError> {
    let mut out = Vec::new();
    for b in read_parquet(bytes, &orders_schema(), WHAT)? {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let ts = |i: usize| b.column(i).as_primitive::<TimestampMillisecondType>();
        let dec = |i: usize| b.column(i).as_primitive::<Decimal128Type>();
        let (order_id, customer_id, item_id, join_status) = (s(0), s(2), s(11), s(22));
        let opt = |i: usize, row: usize| {
            let a = s(i);
            a.is_valid(row).then(|| a.value(row).to_string())
        };
        let location = b.column(10).as_struct();
        let (lat, lon) = (
            location.column(0).as_primitive::<Float64Type>(),
            location.column(1).as_primitive::<Float64Type>(),
        );
        let missing = b.column(23).as_list::<i32>();
        let quantity = b.column(17).as_primitive::<Int32Type>();
        let money = |i: usize, row: usize| {
            Money::from_cents(dec(i).value(row) as i64)
                .ok_or_else(|| LakeError::encode(WHAT, "money out of range"))
        };
        let time = |i: usize, row: usize| {
            Timestamp::from_millis(ts(i).value(row))
                .ok_or_else(|| LakeError::encode(WHAT, "time out of range"))
        };
        for row in 0..b.num_rows() {
            let names = missing.value(row);
            let names = names.as_string::<i32>();
            let missing = (0..names.len())
                .map(|i| parse_missing(names.value(i)))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(EnrichedOrder {
                order_id: order_id.value(row).to_string(),
                event_time: time(1, row)?,
                customer_id: customer_id.value(row).to_string(),
                customer_segment: opt(3, row),
                email_sha256: opt(4, row),
                address_id: opt(5, row),
                city: opt(6, row),
                state: opt(7, row),
                postcode: opt(8, row),
                country: opt(9, row),
                location: location.is_valid(row).then(|| GeoPoint {
                    lat: lat.value(row),
                    lon: lon.value(row),
                }),
                item_id: item_id.value(row).to_string(),
                item_name: opt(12, row),
                category: opt(13, row),
                brand: opt(14, row),
                promo_id: opt(15, row),
                discount_pct: DiscountPct::from_hundredths(dec(16).value(row) as u32)
                    .ok_or_else(|| LakeError::encode(WHAT, "discount out of range"))?,
                quantity: quantity.value(row) as u32,
                unit_price: money(18, row)?,
                gross_amount: money(19, row)?,
                discount_amount: money(20, row)?,
                net_amount: money(21, row)?,
                join_status: match join_status.value(row) {
                    "complete" => JoinStatus::Complete,
                    "partial" => JoinStatus::Partial,
                    other => return Err(LakeError::encode(WHAT, format!("join_status {other:?}"))),
                },
                missing,
                enriched_at: time(24, row)?,
            });
        }
    }
    Ok(out)
}

fn parse_missing(s: &str) -> Result<Missing, LakeError> {
    [
        Missing::Customer,
        Missing::Address,
        Missing::Item,
        Missing::Promo,
    ]
    .into_iter()
    .find(|m| m.as_str() == s)
    .ok_or_else(|| LakeError::encode(WHAT, format!("missing entry {s:?}")))
}
