//! Firehose delivery against moto: every record reaches the destination bucket.

use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
use bytes::Bytes;
use flowline_lake::{FirehoseConfig, FirehoseDelivery, FirehoseMetrics, LakeError, RecordAck};
use flowline_testkit::{Stack, unique_name};

#[tokio::test]
async fn every_record_arrives_in_the_bucket() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let bucket = unique_name("fh");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let stream = unique_name("fh-stream");
    aws.firehose
        .create_delivery_stream()
        .delivery_stream_name(&stream)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/firehose")
                .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                .prefix("raw/firehose/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let metrics = FirehoseMetrics::new(&prometheus::Registry::new()).unwrap();
    let config = FirehoseConfig {
        delivery_stream: stream.clone(),
        max_batch_records: 100,
        ..FirehoseConfig::default()
    };
    assert!(config.validate("firehose").is_empty());
    let delivery = FirehoseDelivery::new(&aws.firehose, config, metrics.clone());
    // 1,234 records: 13 batches of at most 100; plus one over the 1,000 KiB limit.
    let mut records: Vec<Bytes> = (0..1234)
        .map(|i| Bytes::from(format!("{{\"sale_id\":\"s{i}\"}}\n")))
        .collect();
    records.push(Bytes::from(vec![b'x'; 1000 * 1024 + 1]));
    let acks = delivery.deliver(&records).await.unwrap();
    assert_eq!(acks.len(), records.len());
    assert!(
        acks[..1234].iter().all(RecordAck::is_delivered),
        "{:?}",
        acks.iter().find(|a| !a.is_delivered())
    );
    assert!(
        matches!(&acks[1234], RecordAck::Failed { error_code, .. } if error_code == "RecordTooLarge")
    );
    assert_eq!(metrics.records_delivered.get(), 1234);

    // moto delivers synchronously: the bucket holds every record exactly once.
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut lines = Vec::new();
    for k in &keys {
        assert!(k.starts_with("raw/firehose/"), "{k}");
        let body = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key(k)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        lines.extend(
            String::from_utf8(body.to_vec())
                .unwrap()
                .lines()
                .map(str::to_string),
        );
        aws.s3
            .delete_object()
            .bucket(&bucket)
            .key(k)
            .send()
            .await
            .unwrap();
    }
    lines.sort();
    let mut expected: Vec<String> = (0..1234)
        .map(|i| format!("{{\"sale_id\":\"s{i}\"}}"))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);

    // An unknown delivery stream is an error of the call, not retried.
    let missing = FirehoseDelivery::new(
        &aws.firehose,
        FirehoseConfig {
            delivery_stream: unique_name("absent"),
            ..FirehoseConfig::default()
        },
        metrics.clone(),
    );
    let err = missing.deliver(&records[..1]).await.unwrap_err();
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
    assert_eq!(metrics.record_retries.get(), 0);

    aws.firehose
        .delete_delivery_stream()
        .delivery_stream_name(&stream)
        .send()
        .await
        .unwrap();
    aws.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}
