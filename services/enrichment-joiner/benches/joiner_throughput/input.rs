//! The input: the producer's data set (generator), split into the three input streams as
//! Kinesis records of one shard each, plus the reference data of the same seed.
//!
//! Each stream ends with a sentinel an hour after the last sale (a customer, its address
//! and a sale of it): the watermark then passes every real sale, including the join
//! timeout of sales whose customer never arrives, without waiting for idleness. The
//! sentinel sale itself stays pending; it is not counted.

use bytes::Bytes;
use flowline_datagen::{GenConfig, Generator};
use flowline_join::ReferenceData;
use flowline_kinesis::consumer::KinesisClientRecord;
use flowline_model::{Address, Customer, Item, Money, Promo, Sale, StreamKind, Timestamp};

pub struct Input {
    /// Customers, addresses and sales records, in publication order per stream.
    pub streams: Vec<(StreamKind, Vec<KinesisClientRecord>)>,
    items: Vec<Item>,
    promos: Vec<Promo>,
    /// Real sales (the sentinel excluded): the orders a complete run writes.
    pub sales: u64,
}

fn record(i: usize, partition_key: String, data: Vec<u8>) -> KinesisClientRecord {
    KinesisClientRecord {
        partition_key,
        explicit_hash_key: None,
        data: Bytes::from(data),
        // Kinesis sequence numbers are decimal strings that grow within a shard.
        sequence_number: format!("{:056}", i + 1),
        sub_sequence_number: 0,
        approximate_arrival_timestamp: None,
        aggregated: false,
    }
}

pub fn generate(sales: u64, customers: u32) -> Input {
    let generator = Generator::new(GenConfig {
        sales,
        customers,
        ..GenConfig::default()
    })
    .expect("valid generator config");
    let catalog = generator.catalog();
    let (items, promos) = (catalog.items.clone(), catalog.promos.clone());
    let first_item = catalog.items[0].item_id.clone();
    let mut streams: Vec<(StreamKind, Vec<KinesisClientRecord>)> = StreamKind::ALL
        .into_iter()
        .map(|k| (k, Vec::new()))
        .collect();
    let mut last_sale = None;
    for r in generator {
        assert!(r.bad.is_none(), "no bad records are asked for");
        if r.stream == StreamKind::Sales {
            let sale: Sale = serde_json::from_slice(&r.data).expect("a generated sale");
            last_sale = Some(sale.event_time);
        }
        let records = &mut streams
            .iter_mut()
            .find(|(k, _)| *k == r.stream)
            .expect("one of the three streams")
            .1;
        records.push(record(records.len(), r.partition_key, r.data));
    }
    let at = last_sale
        .and_then(|t| t.checked_add_millis(3_600_000))
        .expect("at least one sale");
    for (kind, records) in &mut streams {
        let data = sentinel(*kind, at, &first_item);
        records.push(record(records.len(), "bench-sentinel".into(), data));
    }
    Input {
        streams,
        items,
        promos,
        sales,
    }
}

impl Input {
    /// The reference data of the data set (a fresh copy per run).
    pub fn reference(&self) -> ReferenceData {
        ReferenceData::new(self.items.clone(), self.promos.clone())
    }
}

fn sentinel(kind: StreamKind, at: Timestamp, item_id: &str) -> Vec<u8> {
    let id = "bench-sentinel".to_string();
    match kind {
        StreamKind::Customers => serde_json::to_vec(&Customer {
            customer_id: id.clone(),
            address_id: id,
            first_name: "Sentinel".into(),
            last_name: "Sentinel".into(),
            email: "sentinel@example.com".into(),
            phone: "+1-555-0100".into(),
            segment: "retail".into(),
            updated_at: at,
        }),
        StreamKind::Addresses => serde_json::to_vec(&Address {
            address_id: id,
            street: "1 Main St".into(),
            city: "Springfield".into(),
            state: "IL".into(),
            postcode: "62701".into(),
            country: "US".into(),
            lat: 39.78,
            lon: -89.65,
            updated_at: at,
        }),
        StreamKind::Sales => serde_json::to_vec(&Sale {
            sale_id: id.clone(),
            customer_id: id,
            item_id: item_id.into(),
            promo_id: None,
            quantity: 1,
            unit_price: Money::from_cents(100).expect("a valid price"),
            event_time: at,
        }),
    }
    .expect("events serialise")
}
