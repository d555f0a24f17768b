//! Writes one sample file of each curated and JSON Lines kind into a directory, to
//! check them with other readers (pyarrow, DuckDB, Athena):
//!
//! `cargo run -p flowline-lake --example write_samples -- /tmp/lake-samples`

use std::path::PathBuf;

use flowline_lake::encode::{JsonLinesGz, encode_dead_letters, encode_metrics, encode_orders};
use flowline_model::{
    DeadLetter, Dimension, DiscountPct, EnrichedOrder, GeoPoint, JoinStatus, Missing, Money,
    RecordSource, Timestamp, WindowMetric, metric_id, order_amounts,
};

fn main() -> anyhow_free::Result {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "lake-samples".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let t: Timestamp = "2024-05-01T10:15:30.250Z".parse().map_err(|e: String| e)?;
    let price = Money::parse_decimal("19.99")?;
    let pct = DiscountPct::parse_decimal("12.5")?;
    let a = order_amounts(3, price, pct).ok_or("amounts")?;
    let complete = EnrichedOrder {
        order_id: "sale-1".into(),
        event_time: t,
        customer_id: "c-1".into(),
        customer_segment: Some("vip".into()),
        email_sha256: Some("ab".repeat(32)),
        address_id: Some("a-1".into()),
        city: Some("Lyon".into()),
        state: Some("ARA".into()),
        postcode: Some("69001".into()),
        country: Some("FR".into()),
        location: Some(GeoPoint::rounded(45.764, 4.8357)),
        item_id: "i-1".into(),
        item_name: Some("Book".into()),
        category: Some("books".into()),
        brand: Some("Acme".into()),
        promo_id: Some("p-1".into()),
        discount_pct: pct,
        quantity: 3,
        unit_price: price,
        gross_amount: a.gross,
        discount_amount: a.discount,
        net_amount: a.net,
        join_status: JoinStatus::Complete,
        missing: vec![],
        enriched_at: t.saturating_add_millis(1500),
    };
    let partial = EnrichedOrder {
        order_id: "sale-2".into(),
        customer_segment: None,
        email_sha256: None,
        address_id: None,
        city: None,
        state: None,
        postcode: None,
        country: None,
        location: None,
        join_status: JoinStatus::Partial,
        missing: vec![Missing::Customer, Missing::Address],
        ..complete.clone()
    };
    std::fs::write(
        dir.join("orders.parquet"),
        encode_orders(&[complete, partial])?,
    )?;
    let (ws, we) = (t, t.saturating_add_millis(60_000));
    let metric = WindowMetric {
        id: metric_id(ws, we, Dimension::Category, "books"),
        window_start: ws,
        window_end: we,
        dimension: Dimension::Category,
        key: "books".into(),
        orders: 2,
        units: 6,
        gross_amount: Money::parse_decimal("119.94")?,
        net_amount: Money::parse_decimal("104.94")?,
        avg_order_value: Money::parse_decimal("52.47")?,
        distinct_customers: 1,
        revision: 2,
    };
    std::fs::write(
        dir.join("order_metrics.parquet"),
        encode_metrics(&[metric])?,
    )?;
    let mut raw = JsonLinesGz::new(6, 0);
    raw.push(br#"{"sale_id":"sale-1","customer_id":"c-1","item_id":"i-1","promo_id":null,"quantity":3,"unit_price":19.99,"event_time":"2024-05-01T10:15:30.250Z"}"#)?;
    std::fs::write(dir.join("sales.jsonl.gz"), raw.finish()?)?;
    let src = RecordSource {
        stream: "sales".into(),
        shard_id: "shardId-000000000000".into(),
        sequence_number: "1".into(),
    };
    let letter = DeadLetter::new("aggregator", "late", "too late", &src, b"{\"x\":1}", t);
    std::fs::write(
        dir.join("errors.jsonl.gz"),
        encode_dead_letters(&[letter], 6)?,
    )?;
    println!("wrote samples to {}", dir.display());
    Ok(())
}

/// Errors of any kind, without pulling anyhow into the crate for one example.
mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}
