//! `flowctl status` shows every shard of a consuming application with its owner, its
//! checkpoint and its lag, and every stream's shards.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use flowline_kinesis::consumer::{
    Checkpoint, Checkpointer, Consumer, ConsumerConfig, InitialPosition, LeaseTable,
    ProcessRecordsInput, ShardInfo, ShardRecordProcessor,
};
use flowline_testkit::{Stack, unique_name};
use tokio_util::sync::CancellationToken;

/// Checkpoints after every batch: the simplest well-behaved application.
struct Checkpointing;

#[async_trait::async_trait]
impl ShardRecordProcessor for Checkpointing {
    async fn initialize(&mut self, _shard: &ShardInfo, _start: &Checkpoint) {}
    async fn process_records(&mut self, input: ProcessRecordsInput) {
        if let Some(last) = input.records.last() {
            let _ = input
                .checkpointer
                .checkpoint(&last.sequence_number, last.sub_sequence_number)
                .await;
        }
    }
    async fn lease_lost(&mut self) {}
    async fn shard_ended(&mut self, checkpointer: Checkpointer) {
        let _ = checkpointer.checkpoint_shard_end().await;
    }
    async fn shutdown_requested(&mut self, _checkpointer: Checkpointer) {}
}

fn flowctl(stack: &Stack, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(args)
        .envs(stack.env())
        .output()
        .expect("flowctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn status_shows_every_shard_with_owner_checkpoint_and_lag() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let prefix = format!("{}-", unique_name("status"));
    flowctl(
        &stack,
        &[
            "bootstrap",
            "--prefix",
            &prefix,
            "--shards",
            "1",
            "--stream-shards",
            "orders-enriched=3",
            "--no-opensearch",
        ],
    );

    let stream = format!("{prefix}orders-enriched");
    let entries: Vec<PutRecordsRequestEntry> = (0..60)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("order-{i}"))
                .data(Blob::new(format!("{{\"n\":{i}}}")))
                .build()
                .unwrap()
        })
        .collect();
    aws.kinesis
        .put_records()
        .stream_name(&stream)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();

    let config = ConsumerConfig {
        application_name: format!("{prefix}indexer"),
        streams: vec![stream.clone()],
        worker_id: Some("worker-a".into()),
        initial_position: InitialPosition::TrimHorizon,
        take_interval: Duration::from_millis(300),
        failover_time: Duration::from_secs(3),
        ..ConsumerConfig::default()
    };
    let factory =
        Arc::new(|_: &ShardInfo| Box::new(Checkpointing) as Box<dyn ShardRecordProcessor>);
    let consumer = Consumer::new(
        config,
        aws.kinesis.clone(),
        aws.dynamodb.clone(),
        factory,
        &prometheus::Registry::new(),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let run = tokio::spawn(consumer.run(stop.clone()));

    // Wait until all three shards are owned and checkpointed past their records.
    let table = LeaseTable::new(aws.dynamodb.clone(), format!("{prefix}indexer-leases"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let leases = table.list().await.unwrap();
        let done = leases.len() == 3
            && leases.iter().all(|l| {
                l.owner.as_deref() == Some("worker-a")
                    && matches!(l.checkpoint, Checkpoint::Sequence { .. })
            });
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leases never settled: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let json: serde_json::Value =
        serde_json::from_str(&flowctl(&stack, &["status", "--prefix", &prefix, "--json"])).unwrap();
    let app = json["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == format!("{prefix}indexer"))
        .expect("the indexer application");
    let leases = app["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 3, "{app}");
    for lease in leases {
        assert_eq!(lease["owner"], "worker-a", "{lease}");
        assert_eq!(lease["stream"], stream.as_str());
        assert_eq!(
            lease["millis_behind_latest"], 0,
            "checkpointed at the tip: {lease}"
        );
        assert!(
            lease["checkpoint"]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_digit()),
            "{lease}"
        );
    }
    let streams = json["streams"].as_array().unwrap();
    let ours = streams
        .iter()
        .find(|s| s["name"] == stream.as_str())
        .unwrap();
    assert_eq!(ours["shards"].as_array().unwrap().len(), 3);
    assert!(
        ours["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "OPEN")
    );
    // Applications that never ran are reported, not failed on.
    assert_eq!(streams.len(), 6);

    let text = flowctl(&stack, &["status", "--prefix", &prefix]);
    assert_eq!(text.matches("worker-a").count(), 3, "{text}");
    assert!(
        text.contains("APPLICATION") && text.contains("STREAM"),
        "{text}"
    );

    stop.cancel();
    run.await.unwrap().unwrap();
}
