//! The writer and the uploader against S3 on the local stack (moto).

use std::time::Duration;

use aws_sdk_s3::Client;
use bytes::Bytes;
use flowline_lake::encode::{decode_jsonl_gz, decode_orders};
use flowline_lake::{
    LakeConfig, LakeError, LakeMetrics, LakeRecord, LakeWriter, ObjectSink, Position, PrefixKind,
    RecordMeta, S3Uploader, UploadConfig,
};
use flowline_model::{DiscountPct, EnrichedOrder, JoinStatus, Money, Timestamp, order_amounts};
use flowline_testkit::{Stack, unique_name};

async fn bucket(s3: &Client) -> String {
    let name = unique_name("lake");
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

async fn delete_bucket(s3: &Client, bucket: &str) {
    for key in list(s3, bucket, "").await {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("delete object");
    }
    s3.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("delete bucket");
}

async fn list(s3: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

async fn get(s3: &Client, bucket: &str, key: &str) -> Bytes {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get");
    out.body.collect().await.expect("body").into_bytes()
}

fn order(i: u32, event_time: Timestamp) -> EnrichedOrder {
    let unit_price = Money::from_cents(1_000 + i64::from(i)).unwrap();
    let a = order_amounts(2, unit_price, DiscountPct::ZERO).unwrap();
    EnrichedOrder {
        order_id: format!("o-{i}"),
        event_time,
        customer_id: format!("c-{}", i % 3),
        customer_segment: Some("retail".into()),
        email_sha256: None,
        address_id: None,
        city: Some("Paris".into()),
        state: None,
        postcode: None,
        country: Some("FR".into()),
        location: None,
        item_id: "i-1".into(),
        item_name: Some("Book".into()),
        category: Some("books".into()),
        brand: None,
        promo_id: None,
        discount_pct: DiscountPct::ZERO,
        quantity: 2,
        unit_price,
        gross_amount: a.gross,
        discount_amount: a.discount,
        net_amount: a.net,
        join_status: JoinStatus::Complete,
        missing: vec![],
        enriched_at: event_time.saturating_add_millis(1_000),
    }
}

fn meta(stream: &str, seq: u64, arrival: Timestamp) -> RecordMeta {
    RecordMeta {
        stream: stream.into(),
        shard_id: "shardId-000000000000".into(),
        position: Position::new(format!("{}", 49_000_000 + seq), 0),
        arrival,
    }
}

#[tokio::test]
async fn writer_uploads_raw_curated_and_errors_and_reports_safe_positions() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let bucket = bucket(&aws.s3).await;
    let metrics = LakeMetrics::new(&prometheus::Registry::new()).unwrap();
    let config = LakeConfig {
        bucket: bucket.clone(),
        ..LakeConfig::default()
    };
    let uploader = S3Uploader::new(&aws.s3, &bucket, config.upload.clone(), metrics.clone());
    let writer = LakeWriter::new(config, uploader, metrics.clone());
    let t0: Timestamp = "2024-05-01T10:15:00.000Z".parse().unwrap();

    // Raw records, one with a newline (goes to errors), byte-exact otherwise.
    let raw: Vec<Bytes> = (0..20)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"sale_id":"s{i}","event_time":"2024-05-01T10:{:02}:00.000Z","note":"é \\n"}}"#,
                i
            ))
        })
        .collect();
    for (i, r) in raw.iter().enumerate() {
        let m = meta("sales", i as u64, t0);
        writer
            .add(&m, LakeRecord::raw(&m, r.clone()))
            .await
            .unwrap();
    }
    let bad = meta("sales", 100, t0);
    writer
        .add(&bad, LakeRecord::raw(&bad, Bytes::from_static(b"{\n}")))
        .await
        .unwrap();
    // Curated orders across two hours.
    let orders: Vec<EnrichedOrder> = (0..10)
        .map(|i| order(i, t0.saturating_add_millis(i64::from(i) * 600_000)))
        .collect();
    for (i, o) in orders.iter().enumerate() {
        let m = meta("orders-enriched", i as u64, t0);
        writer
            .add(&m, LakeRecord::order(o.clone(), 500))
            .await
            .unwrap();
    }
    let unparsable = meta("orders-enriched", 50, t0);
    writer
        .add(
            &unparsable,
            LakeRecord::order_from_bytes(&unparsable, b"{\"order_id\":1}"),
        )
        .await
        .unwrap();

    assert_eq!(
        writer.safe_position("sales", "shardId-000000000000"),
        None,
        "nothing uploaded yet"
    );
    let safe = writer
        .flush_shard_and_wait("sales", "shardId-000000000000")
        .await
        .unwrap();
    assert_eq!(safe, Some(bad.position.clone()));
    let safe = writer
        .flush_shard_and_wait("orders-enriched", "shardId-000000000000")
        .await
        .unwrap();
    assert_eq!(safe, Some(unparsable.position.clone()));
    writer.shutdown().await.unwrap();

    let raw_keys = list(&aws.s3, &bucket, "raw/").await;
    assert_eq!(
        raw_keys,
        ["raw/sales/dt=2024-05-01/hour=10/sales_shardId-000000000000_49000000_49000019.jsonl.gz"]
    );
    let lines = decode_jsonl_gz(&get(&aws.s3, &bucket, &raw_keys[0]).await).unwrap();
    assert_eq!(
        lines,
        raw.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
        "byte-exact"
    );

    let curated = list(&aws.s3, &bucket, "curated/orders/").await;
    assert_eq!(curated.len(), 2, "{curated:?}");
    assert!(curated[0].starts_with("curated/orders/dt=2024-05-01/hour=10/orders-enriched_shardId-000000000000_49000000_49000004"), "{curated:?}");
    let mut back = Vec::new();
    for k in &curated {
        back.extend(decode_orders(get(&aws.s3, &bucket, k).await).unwrap());
    }
    assert_eq!(back, orders);

    let errors = list(&aws.s3, &bucket, "errors/").await;
    assert_eq!(
        errors,
        [
            "errors/archiver/conversion/dt=2024-05-01/orders-enriched_shardId-000000000000_49000050_49000050.jsonl.gz",
            "errors/archiver/unframeable/dt=2024-05-01/sales_shardId-000000000000_49000100_49000100.jsonl.gz",
        ]
    );
    let envelope = decode_jsonl_gz(&get(&aws.s3, &bucket, &errors[1]).await).unwrap();
    let letter: flowline_model::DeadLetter = serde_json::from_slice(&envelope[0]).unwrap();
    assert_eq!(letter.payload().unwrap(), b"{\n}");
    assert_eq!(
        metrics
            .objects_written
            .with_label_values(&["curated"])
            .get(),
        2
    );
    assert_eq!(
        metrics.records_written.with_label_values(&["raw"]).get(),
        20
    );
    assert_eq!(metrics.buffered_bytes.get(), 0);
    delete_bucket(&aws.s3, &bucket).await;
}

#[tokio::test]
async fn multipart_upload_round_trips_and_failures_are_classified() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let bucket = bucket(&aws.s3).await;
    let metrics = LakeMetrics::new(&prometheus::Registry::new()).unwrap();
    let config = UploadConfig {
        multipart_threshold_bytes: 1024,
        part_size_bytes: 5 * 1024 * 1024,
        ..UploadConfig::default()
    };
    let uploader = S3Uploader::new(&aws.s3, &bucket, config.clone(), metrics.clone());
    // 11 MiB of varied bytes: three parts (5 + 5 + 1 MiB).
    let body: Bytes = (0..11 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<_>>()
        .into();
    uploader
        .put(
            "big/object.bin",
            body.clone(),
            "application/octet-stream",
            PrefixKind::Raw,
        )
        .await
        .unwrap();
    let back = get(&aws.s3, &bucket, "big/object.bin").await;
    assert!(back == body, "multipart object differs from its input");
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("big/object.bin")
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-3\""),
        "not a 3-part upload: {:?}",
        head.e_tag()
    );
    // The same key again overwrites (idempotent).
    uploader
        .put(
            "big/object.bin",
            body.slice(..2048),
            "application/octet-stream",
            PrefixKind::Raw,
        )
        .await
        .unwrap();
    assert_eq!(
        get(&aws.s3, &bucket, "big/object.bin").await,
        body.slice(..2048)
    );
    // No multipart upload is left behind.
    let pending = aws
        .s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(pending.uploads().is_empty());

    // A missing bucket is not retried.
    let missing = S3Uploader::new(&aws.s3, &unique_name("no-such"), config, metrics.clone());
    let err = missing
        .put(
            "k",
            Bytes::from_static(b"x"),
            "text/plain",
            PrefixKind::Errors,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LakeError::Aws {
                retriable: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    assert_eq!(
        metrics.upload_retries.with_label_values(&["errors"]).get(),
        0
    );
    delete_bucket(&aws.s3, &bucket).await;
}

#[tokio::test]
async fn a_failed_upload_stops_the_writer() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let metrics = LakeMetrics::new(&prometheus::Registry::new()).unwrap();
    let config = LakeConfig {
        bucket: unique_name("absent"),
        ..LakeConfig::default()
    };
    let uploader = S3Uploader::new(
        &aws.s3,
        &config.bucket,
        config.upload.clone(),
        metrics.clone(),
    );
    let writer = LakeWriter::new(config, uploader, metrics.clone());
    let t0: Timestamp = "2024-05-01T10:15:00.000Z".parse().unwrap();
    let m = meta("sales", 1, t0);
    writer
        .add(&m, LakeRecord::raw(&m, Bytes::from_static(b"{}")))
        .await
        .unwrap();
    let err = writer
        .flush_shard_and_wait("sales", "shardId-000000000000")
        .await
        .unwrap_err();
    assert!(matches!(err, LakeError::Stopped(_)), "{err}");
    assert_eq!(writer.safe_position("sales", "shardId-000000000000"), None);
    let m = meta("sales", 2, t0);
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        writer.add(&m, LakeRecord::raw(&m, Bytes::from_static(b"{}"))),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, LakeError::Stopped(_)), "{err}");
    assert_eq!(metrics.upload_failures.with_label_values(&["raw"]).get(), 1);
    assert!(writer.shutdown().await.is_err());
}
