use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_kinesis::types::StreamStatus;
use aws_smithy_types::error::display::DisplayErrorContext;
use flowline_aws::AwsClients;

use super::Outcome;

/// Creates the stream unless it exists, then waits until it is ACTIVE.
pub async fn ensure_stream(
    aws: &AwsClients,
    name: &str,
    shards: i32,
    wait: Duration,
) -> anyhow::Result<Outcome> {
    let outcome = match aws
        .kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
    {
        Ok(_) => Outcome::Created,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Outcome::Exists
        }
        Err(e) => bail!("creating stream {name}: {}", DisplayErrorContext(e)),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let summary = aws
            .kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("describing stream {name}"))?;
        let status = summary
            .stream_description_summary()
            .map(|d| d.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return Ok(outcome);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("stream {name} is not ACTIVE after {wait:?} (status {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
