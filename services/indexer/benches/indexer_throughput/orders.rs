//! The input: real enriched orders, made the way the pipeline makes them (the producer's
//! generator, joined by the join core with in-memory state), serialised as the joiner writes
//! them to `orders-enriched`, wrapped as Kinesis records of one shard each.

use bytes::Bytes;
use flowline_datagen::{GenConfig, Generator};
use flowline_join::{JoinConfig, JoinCore, JoinStores, ReferenceData, ReferenceHandle};
use flowline_kinesis::consumer::KinesisClientRecord;
use flowline_model::{Event, ParseConfig, RecordSource};
use futures::executor::block_on;

/// `n` enriched orders as serialised JSON, in emission order.
pub fn enriched_orders(n: u64) -> Vec<Bytes> {
    let cfg = GenConfig {
        sales: n,
        customers: (n / 10).clamp(1_000, 100_000) as u32,
        ..GenConfig::default()
    };
    let generator = Generator::new(cfg).expect("valid generator config");
    let catalog = generator.catalog();
    let reference = ReferenceData::new(catalog.items.clone(), catalog.promos.clone());
    let mut core = JoinCore::new(
        JoinConfig::default(),
        JoinStores::in_memory(),
        ReferenceHandle::new(reference),
    )
    .expect("valid join config");
    let parse = ParseConfig::default();
    let mut last = None;
    block_on(async {
        for (i, record) in generator.enumerate() {
            let source = RecordSource {
                stream: format!("{:?}", record.stream),
                shard_id: "shardId-000000000000".into(),
                sequence_number: i.to_string(),
            };
            match parse.parse_event(record.stream, &record.data) {
                Ok(Event::Customer(c)) => core.apply_customer(c).await.expect("customer"),
                Ok(Event::Address(a)) => core.apply_address(a).await.expect("address"),
                Ok(Event::Sale(s)) => {
                    last = Some(s.event_time);
                    core.add_sale(s, source).await.expect("sale");
                }
                Err(e) => panic!("the generator made a bad record: {e}"),
            }
        }
        // A day past the last sale: every sale is due, joined or partial after the timeout.
        let watermark = last
            .and_then(|t| t.checked_add_millis(86_400_000))
            .expect("at least one sale");
        core.flush().await.expect("flush");
        let orders = core.advance(watermark).await.expect("advance");
        core.confirm_emitted().await.expect("confirm");
        orders
            .iter()
            .map(|o| Bytes::from(serde_json::to_vec(o).expect("an order serialises")))
            .collect()
    })
}

/// The orders as the records of `shards` shards (contiguous runs, sequence numbers rising).
pub fn shard_records(orders: &[Bytes], shards: usize) -> Vec<Vec<KinesisClientRecord>> {
    let per_shard = orders.len().div_ceil(shards.max(1));
    orders
        .chunks(per_shard.max(1))
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, data)| KinesisClientRecord {
                    partition_key: i.to_string(),
                    explicit_hash_key: None,
                    data: data.clone(),
                    // Kinesis sequence numbers are decimal strings that grow within a shard.
                    sequence_number: format!("{:056}", i + 1),
                    sub_sequence_number: 0,
                    approximate_arrival_timestamp: None,
                    aggregated: false,
                })
                .collect()
        })
        .collect()
}
