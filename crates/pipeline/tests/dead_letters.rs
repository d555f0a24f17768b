//! A rejected record arrives in the dead-letter stream as the design's envelope, counted.

use flowline_kinesis::producer::{ProducerConfig, ProducerMetrics};
use flowline_model::{DeadLetter, ParseConfig, RecordSource, StreamKind};
use flowline_pipeline::{DeadLetterMetrics, DeadLetters};
use flowline_testkit::{Stack, create_stream, read_stream, unique_name};

#[tokio::test]
async fn rejected_records_land_in_the_dead_letter_stream_with_their_reason() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let stream = unique_name("dead-letters");
    create_stream(&aws.kinesis, &stream, 1).await.unwrap();

    let registry = prometheus::Registry::new();
    let metrics = DeadLetterMetrics::register(&registry).unwrap();
    let kpl = ProducerMetrics::register(&registry).unwrap();
    let dlq = DeadLetters::new(
        &aws.kinesis,
        &stream,
        ProducerConfig::default(),
        &kpl,
        metrics.clone(),
        "enrichment-joiner",
    )
    .await
    .unwrap();

    let payload = br#"{"sale_id":"s-1","customer_id":"c-1","item_id":"i-1","promo_id":null,"quantity":-3,"unit_price":1.00,"event_time":"2026-01-01T00:00:00Z"}"#;
    let error = ParseConfig::default()
        .parse_event(StreamKind::Sales, payload)
        .unwrap_err();
    let source = RecordSource {
        stream: "sales".into(),
        shard_id: "shardId-000000000001".into(),
        sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
    };
    let ack = dlq.rejected(&error, payload, &source).await.unwrap();
    ack.await.expect("acknowledged");
    dlq.shutdown().await.unwrap();

    let records = read_stream(&aws.kinesis, &stream).await.unwrap();
    assert_eq!(records.len(), 1);
    let letter: DeadLetter = serde_json::from_slice(&records[0].data).unwrap();
    assert_eq!(letter.stage, "enrichment-joiner");
    assert_eq!(letter.error_type, "bad_field");
    assert!(letter.reason.contains("quantity"), "{}", letter.reason);
    assert_eq!(letter.source_stream, "sales");
    assert_eq!(letter.shard_id, source.shard_id);
    assert_eq!(letter.sequence_number, source.sequence_number);
    assert_eq!(letter.payload().unwrap(), payload);
    assert_eq!(
        metrics
            .records
            .with_label_values(&["enrichment-joiner", "bad_field"])
            .get(),
        1
    );
}
