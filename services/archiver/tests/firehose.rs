//! Firehose mode: a stream configured for a delivery stream is delivered through
//! PutRecordBatch, every record as one JSON Lines line in the delivery stream's bucket;
//! a record that no JSON Lines file can hold lands under the lake's `errors/`.

mod common;

use std::time::Duration;

use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Lake, eventually};
use flowline_model::DeadLetter;
use flowline_testkit::{create_bucket, unique_name};

#[tokio::test]
async fn firehose_mode_delivers_every_record() {
    tokio::time::timeout(Duration::from_secs(120), run())
        .await
        .expect("test finishes in time");
}

async fn run() {
    let delivery = unique_name("sales-to-s3");
    let target = unique_name("firehose-target");
    let lake = Lake::new(
        &["sales"],
        2,
        "",
        &format!(
            "[firehose]\nmax_batch_records = 100\n[firehose.streams]\n\"$sales\" = {delivery:?}\n"
        ),
    )
    .await;

    create_bucket(&lake.aws.s3, &target).await.unwrap();
    lake.aws
        .firehose
        .create_delivery_stream()
        .delivery_stream_name(&delivery)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/firehose-delivery")
                .bucket_arn(format!("arn:aws:s3:::{target}"))
                .prefix("sales/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let mut records: Vec<Vec<u8>> = common::raw_events("sales", 700)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let unframeable = b"{\"sale_id\":\n\"s-x\"}".to_vec();
    records.insert(42, unframeable.clone());
    lake.put(lake.stream("sales"), &records).await;

    let mut svc = lake.spawn();
    svc.wait_ready(Duration::from_secs(60)).await.unwrap();
    let delivered = || async {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for (key, body) in lake.objects_in(&target, "sales/").await {
            assert!(body.ends_with(b"\n"), "{key}: not whole lines");
            lines.extend(
                body.split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
        lines
    };
    let filed = || async {
        let errors = lake.lines("errors/archiver/unframeable/").await;
        errors
            .into_values()
            .flatten()
            .map(|l| serde_json::from_slice::<DeadLetter>(&l).unwrap())
            .collect::<Vec<_>>()
    };
    eventually(
        Duration::from_secs(60),
        "every record delivered",
        || async { delivered().await.len() >= records.len() - 1 && !filed().await.is_empty() },
    )
    .await;
    let mut got = delivered().await;
    let mut want: Vec<Vec<u8>> = records
        .iter()
        .filter(|r| **r != unframeable)
        .cloned()
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "delivered lines differ from the input");

    // The unframeable record is in the lake, exact, and nothing went to raw/.
    let letters = filed().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        STANDARD.decode(&letters[0].payload_base64).unwrap(),
        unframeable
    );
    assert!(lake.objects("raw/").await.is_empty());

    svc.signal(libc::SIGTERM);
    let status = svc.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", svc.logs());
}
