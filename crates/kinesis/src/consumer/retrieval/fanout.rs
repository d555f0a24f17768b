//! Enhanced fan-out: a registered stream consumer and SubscribeToShard event streams.
//!
//! A subscription lasts at most 5 minutes; the reader resubscribes from the last continuation
//! sequence number when it ends or fails.

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{ConsumerStatus, StartingPosition, SubscribeToShardEventStream};
use tokio::sync::mpsc;

use super::polling::log_read_error;
use super::{Backoff, RawBatch, StartPosition, send_batch};
use crate::consumer::metrics::ConsumerMetrics;
use crate::consumer::sdk_error::{code, display_chain, kinesis_error};
use crate::error::{ApiError, FailureReason};
use crate::{Error, Result};

/// Registers `name` on the stream (or finds it registered) and waits until it is ACTIVE.
/// Returns the consumer ARN.
pub(crate) async fn ensure_stream_consumer(
    client: &Client,
    stream_arn: &str,
    name: &str,
    timeout: Duration,
) -> Result<String> {
    let arn = match client
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await
    {
        Ok(out) => out.consumer.map(|c| c.consumer_arn),
        Err(e) if code(&e) == Some("ResourceInUseException") => None,
        Err(e) => return Err(Error::Api(kinesis_error(&e))),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let req = client.describe_stream_consumer();
        let req = match &arn {
            Some(arn) => req.consumer_arn(arn),
            None => req.stream_arn(stream_arn).consumer_name(name),
        };
        let out = req
            .send()
            .await
            .map_err(|e| Error::Api(kinesis_error(&e)))?;
        if let Some(d) = out.consumer_description
            && d.consumer_status == ConsumerStatus::Active
        {
            return Ok(d.consumer_arn);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Api(ApiError::new(
                FailureReason::Timeout,
                "timeout",
                format!("stream consumer {name} on {stream_arn} not ACTIVE within {timeout:?}"),
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A subscription silent for this long is treated as dead and replaced.
const SUBSCRIPTION_SILENCE_LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct FanoutReader {
    pub client: Client,
    pub stream: String,
    pub shard_id: String,
    pub consumer_arn: String,
    pub closed_shard_check_interval: Duration,
    pub metrics: ConsumerMetrics,
}

impl FanoutReader {
    /// Reads until the shard ends or the receiver is dropped.
    pub async fn run(self, start: StartPosition, tx: mpsc::Sender<RawBatch>) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let mut position = start;
        let mut last_closed_check = tokio::time::Instant::now();
        let lag = self
            .metrics
            .behind_latest
            .with_label_values(&[&self.stream, &self.shard_id]);
        loop {
            let mut starting = StartingPosition::builder()
                .r#type(position.iterator_type())
                .set_sequence_number(position.sequence_number())
                .set_timestamp(position.timestamp());
            if let StartPosition::AtTimestamp(_) = position {
                starting = starting.set_sequence_number(None);
            }
            let starting = starting.build().expect("starting position has a type");
            let res = self
                .client
                .subscribe_to_shard()
                .consumer_arn(&self.consumer_arn)
                .shard_id(&self.shard_id)
                .starting_position(starting)
                .send()
                .await;
            let mut out = match res {
                Ok(out) => out,
                Err(e) => {
                    let mut err = kinesis_error(&e);
                    // The previous subscription of this shard is still open (resubscribing too fast).
                    if code(&e) == Some("ResourceInUseException") {
                        err.reason = FailureReason::Throttled;
                    }
                    self.metrics
                        .read_errors
                        .with_label_values(&[err.reason.as_str()])
                        .inc();
                    let delay = backoff.next_delay();
                    log_read_error(
                        &self.stream,
                        &self.shard_id,
                        "SubscribeToShard",
                        &err,
                        delay,
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            // The last event brought nothing: a closed shard may have ended unannounced.
            let mut caught_up = false;
            let mut last_event = tokio::time::Instant::now();
            loop {
                let next =
                    tokio::time::timeout(self.closed_shard_check_interval, out.event_stream.recv());
                let Ok(next) = next.await else {
                    if last_event.elapsed() >= SUBSCRIPTION_SILENCE_LIMIT {
                        // Kinesis sends events every few seconds even without records: this
                        // connection is dead without having failed.
                        self.metrics
                            .read_errors
                            .with_label_values(&["subscription"])
                            .inc();
                        tracing::warn!(stream = %self.stream, shard = %self.shard_id,
                            "no SubscribeToShard event for {SUBSCRIPTION_SILENCE_LIMIT:?}; resubscribing");
                        break;
                    }
                    // A closed shard's subscription may go quiet instead of ending.
                    last_closed_check = tokio::time::Instant::now();
                    if caught_up && self.end_if_closed(&position, &tx).await {
                        return;
                    }
                    continue;
                };
                last_event = tokio::time::Instant::now();
                match next {
                    Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(ev))) => {
                        backoff.reset();
                        // Child shards are announced only once the shard is closed and read to its end.
                        let shard_end = ev.child_shards.as_ref().is_some_and(|c| !c.is_empty());
                        if !ev.continuation_sequence_number.is_empty() {
                            position = StartPosition::AfterSequence(
                                ev.continuation_sequence_number.clone(),
                            );
                        } else if let Some(last) = ev.records.last() {
                            position =
                                StartPosition::AfterSequence(last.sequence_number().to_owned());
                        }
                        // Not gated on MillisBehindLatest: kinesis-mock reports a closed shard as behind.
                        let idle = ev.records.is_empty();
                        let batch =
                            RawBatch::new(ev.records, Some(ev.millis_behind_latest), shard_end);
                        if !send_batch(&tx, batch, &lag).await || shard_end {
                            return;
                        }
                        caught_up = idle;
                        if idle && last_closed_check.elapsed() >= self.closed_shard_check_interval {
                            last_closed_check = tokio::time::Instant::now();
                            if self.end_if_closed(&position, &tx).await {
                                return;
                            }
                        }
                    }
                    Ok(Some(other)) => {
                        tracing::debug!(?other, "ignoring unknown SubscribeToShard event")
                    }
                    Ok(None) => break, // the subscription's 5 minutes are over
                    Err(e)
                        if matches!(
                            e.as_service_error(),
                            Some(SubscribeToShardEventStreamError::ResourceInUseException(_))
                        ) =>
                    {
                        // The previous subscription of this shard (ours before a restart or a
                        // hand-over) has not ended yet: expected for a moment, retried.
                        self.metrics
                            .read_errors
                            .with_label_values(&["subscription_in_use"])
                            .inc();
                        let delay = backoff.next_delay();
                        tracing::debug!(stream = %self.stream, shard = %self.shard_id, ?delay, "shard subscription still in use; retrying");
                        tokio::time::sleep(delay).await;
                        break;
                    }
                    Err(e) => {
                        self.metrics
                            .read_errors
                            .with_label_values(&["subscription"])
                            .inc();
                        let delay = backoff.next_delay();
                        tracing::warn!(stream = %self.stream, shard = %self.shard_id, error = %display_chain(&e), ?delay,
                            "SubscribeToShard event stream failed; resubscribing");
                        tokio::time::sleep(delay).await;
                        break;
                    }
                }
            }
        }
    }

    /// Sends the end of the shard and returns true when it is closed and fully read.
    async fn end_if_closed(&self, position: &StartPosition, tx: &mpsc::Sender<RawBatch>) -> bool {
        if !self.closed_and_drained(position).await {
            return false;
        }
        tracing::info!(stream = %self.stream, shard = %self.shard_id,
            "closed shard fully read (end not announced by the subscription)");
        let end = RawBatch::new(Vec::new(), Some(0), true);
        let _ = tx.send(end).await;
        true
    }

    /// Whether the shard is closed with nothing after `position`: a GetRecords from there
    /// returns no records and no next iterator. Failures count as "not known to be closed".
    async fn closed_and_drained(&self, position: &StartPosition) -> bool {
        let it = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(&self.shard_id)
            .shard_iterator_type(position.iterator_type())
            .set_starting_sequence_number(position.sequence_number())
            .set_timestamp(position.timestamp())
            .send()
            .await;
        let Some(it) = it.ok().and_then(|o| o.shard_iterator) else {
            return false;
        };
        match self
            .client
            .get_records()
            .shard_iterator(it)
            .limit(1)
            .send()
            .await
        {
            Ok(out) => {
                tracing::debug!(
                    n = out.records().len(),
                    next = out.next_shard_iterator().is_some(),
                );
                out.records().is_empty() && out.next_shard_iterator().is_none()
            }
            Err(e) => {
                tracing::debug!(stream = %self.stream, shard = %self.shard_id, error = %display_chain(&e), "closed-shard check failed");
                false
            }
        }
    }
}
