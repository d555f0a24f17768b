//! Creating and reading back streams and buckets in tests.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};

/// One user record read back from a stream (after KPL deaggregation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
    pub shard_id: String,
    pub sequence_number: String,
    pub sub_sequence_number: u64,
}

/// Creates a stream with `shards` shards and waits until it is ACTIVE.
pub async fn create_stream(
    kinesis: &aws_sdk_kinesis::Client,
    name: &str,
    shards: i32,
) -> anyhow::Result<()> {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .with_context(|| format!("creating stream {name}"))?;
    for _ in 0..200 {
        let d = kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await?;
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("stream {name} did not become ACTIVE")
}

/// Creates a bucket (us-east-1).
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) -> anyhow::Result<()> {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .with_context(|| format!("creating bucket {name}"))?;
    Ok(())
}

/// Every user record in the stream, from TRIM_HORIZON to the tip, shard by shard (in
/// sequence order within a shard), KPL aggregates expanded.
pub async fn read_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
) -> anyhow::Result<Vec<StreamRecord>> {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .with_context(|| format!("listing shards of {stream}"))?;
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator
            .context("no shard iterator")?;
        loop {
            let page = kinesis
                .get_records()
                .shard_iterator(&iterator)
                .limit(10_000)
                .send()
                .await?;
            for record in page.records() {
                let users = flowline_kinesis::agg::deaggregate(
                    record.partition_key(),
                    None,
                    bytes::Bytes::copy_from_slice(record.data().as_ref()),
                )?;
                for user in users {
                    out.push(StreamRecord {
                        partition_key: user.partition_key,
                        data: user.data.to_vec(),
                        shard_id: shard.shard_id().to_string(),
                        sequence_number: record.sequence_number().to_string(),
                        sub_sequence_number: user.sub_sequence_number,
                    });
                }
            }
            let caught_up = page.records().is_empty() && page.millis_behind_latest() == Some(0);
            match page.next_shard_iterator {
                Some(next) if !caught_up => iterator = next,
                _ => break,
            }
        }
    }
    Ok(out)
}
