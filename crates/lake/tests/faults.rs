//! Retries through the testkit's fault-injecting proxy in front of moto: server errors,
//! dropped connections and stalls are retried in this crate's one retry layer, and
//! every object and record still arrives exactly once.

use std::time::Duration;

use bytes::Bytes;
use flowline_lake::encode::decode_jsonl_gz;
use flowline_lake::{
    FirehoseConfig, FirehoseDelivery, FirehoseMetrics, LakeConfig, LakeMetrics, LakeRecord,
    LakeWriter, Position, RecordAck, RecordMeta, RetryConfig, S3Uploader,
};
use flowline_model::Timestamp;
use flowline_testkit::fault_proxy::{FaultPolicy, FaultProxy};
use flowline_testkit::{Stack, unique_name};

fn fast_retries() -> RetryConfig {
    RetryConfig {
        max_attempts: 12,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(2),
    }
}

fn faults(seed: u64) -> FaultPolicy {
    FaultPolicy {
        seed,
        server_error: 0.3,
        drop_connection: 0.1,
        stall: 0.03,
        stall_for: Duration::from_secs(4),
        max_faults: 60,
        ..FaultPolicy::default()
    }
}

#[tokio::test]
async fn s3_uploads_survive_injected_faults() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let bucket = unique_name("lake-faults");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let proxy = FaultProxy::start(&stack.moto_url(), faults(7))
        .await
        .unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws.s3
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .force_path_style(true)
            .build(),
    );
    let metrics = LakeMetrics::new(&prometheus::Registry::new()).unwrap();
    let mut config = LakeConfig {
        bucket: bucket.clone(),
        ..LakeConfig::default()
    };
    config.upload.retry = fast_retries();
    config.buffer.size_hint_bytes = 500;
    let uploader = S3Uploader::new(&s3, &bucket, config.upload.clone(), metrics.clone());
    let writer = LakeWriter::new(config, uploader, metrics.clone());
    let arrival: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
    let mut sent = Vec::new();
    for seq in 0..200u64 {
        let m = RecordMeta {
            stream: "customers".into(),
            shard_id: "shardId-000000000003".into(),
            position: Position::new((10_000 + seq).to_string(), 0),
            arrival,
        };
        let data = Bytes::from(format!(
            r#"{{"customer_id":"c{seq}","updated_at":"2024-05-01T10:00:00Z"}}"#
        ));
        sent.push(data.to_vec());
        writer.add(&m, LakeRecord::raw(&m, data)).await.unwrap();
    }
    let safe = writer
        .flush_shard_and_wait("customers", "shardId-000000000003")
        .await
        .unwrap();
    assert_eq!(safe, Some(Position::new("10199", 0)));
    writer.shutdown().await.unwrap();

    let stats = proxy.stats();
    assert!(
        stats.server_errors + stats.dropped + stats.stalled > 0,
        "no fault injected: {stats:?}"
    );
    assert!(metrics.upload_retries.with_label_values(&["raw"]).get() > 0);
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let mut lines = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap();
        let body = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap();
        lines.extend(decode_jsonl_gz(&body.into_bytes()).unwrap());
        aws.s3
            .delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    lines.sort();
    sent.sort();
    assert_eq!(lines, sent, "every record exactly once");
    aws.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}

#[tokio::test]
async fn firehose_retries_failed_calls_without_duplicates() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let bucket = unique_name("fh-faults");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let stream = unique_name("fh-faults");
    aws.firehose
        .create_delivery_stream()
        .delivery_stream_name(&stream)
        .extended_s3_destination_configuration(
            aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/firehose")
                .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::start(
        &stack.moto_url(),
        FaultPolicy {
            stall: 0.0,
            ..faults(11)
        },
    )
    .await
    .unwrap();
    let firehose = aws_sdk_firehose::Client::from_conf(
        aws.firehose
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .build(),
    );
    let metrics = FirehoseMetrics::new(&prometheus::Registry::new()).unwrap();
    let config = FirehoseConfig {
        delivery_stream: stream.clone(),
        max_batch_records: 20,
        retry: fast_retries(),
        ..FirehoseConfig::default()
    };
    let delivery = FirehoseDelivery::new(&firehose, config, metrics.clone());
    let records: Vec<Bytes> = (0..400).map(|i| Bytes::from(format!("r{i}\n"))).collect();
    let acks = delivery.deliver(&records).await.unwrap();
    assert!(acks.iter().all(RecordAck::is_delivered));
    assert!(proxy.stats().server_errors + proxy.stats().dropped > 0);
    assert!(metrics.record_retries.get() > 0);

    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let mut lines = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap();
        let body = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap();
        lines.extend(
            String::from_utf8(body.to_vec())
                .unwrap()
                .lines()
                .map(str::to_string),
        );
        aws.s3
            .delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    lines.sort();
    let mut expected: Vec<String> = (0..400).map(|i| format!("r{i}")).collect();
    expected.sort();
    assert_eq!(lines, expected, "every record exactly once");
    aws.firehose
        .delete_delivery_stream()
        .delivery_stream_name(&stream)
        .send()
        .await
        .unwrap();
    aws.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}
