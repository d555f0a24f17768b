//! GetRecords polling within the per-shard limits (5 calls/s, shared by every reader).

use std::time::Duration;

use aws_sdk_kinesis::Client;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Backoff, RawBatch, StartPosition, send_batch};
use crate::consumer::config::PollingConfig;
use crate::consumer::metrics::ConsumerMetrics;
use crate::consumer::sdk_error::{code, kinesis_error};
use crate::error::FailureReason;

pub(crate) struct PollingReader {
    pub client: Client,
    pub stream: String,
    pub shard_id: String,
    pub config: PollingConfig,
    pub metrics: ConsumerMetrics,
}

impl PollingReader {
    /// Reads until the shard ends or the receiver is dropped.
    pub async fn run(self, start: StartPosition, tx: mpsc::Sender<RawBatch>) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        // Where to get a new iterator from: the start, then just after the last record read.
        let mut position = start;
        let mut iterator: Option<String> = None;
        let mut last_call: Option<Instant> = None;
        let lag = self
            .metrics
            .behind_latest
            .with_label_values(&[&self.stream, &self.shard_id]);
        loop {
            let it = match iterator.take() {
                Some(it) => it,
                None => match self.get_iterator(&position).await {
                    Some(it) => it,
                    None => {
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            if let Some(t) = last_call {
                tokio::time::sleep_until(t + self.config.min_time_between_calls).await;
            }
            last_call = Some(Instant::now());
            let res = self
                .client
                .get_records()
                .shard_iterator(&it)
                .limit(self.config.max_records)
                .send()
                .await;
            match res {
                Ok(out) => {
                    backoff.reset();
                    if let Some(last) = out.records().last() {
                        position = StartPosition::AfterSequence(last.sequence_number().to_owned());
                    }
                    let at_tip = out.millis_behind_latest() == Some(0);
                    let next = out.next_shard_iterator.clone();
                    let batch =
                        RawBatch::new(out.records, out.millis_behind_latest, next.is_none());
                    if !send_batch(&tx, batch, &lag).await || next.is_none() {
                        return;
                    }
                    iterator = next;
                    if at_tip {
                        // Caught up (with or without records): wait for more to gather, as
                        // KCL's polling does, rather than call 5 times a second for a few
                        // records each; behind, only the per-shard pace applies.
                        tokio::time::sleep(self.config.idle_time_between_reads).await;
                    }
                }
                Err(e) if code(&e) == Some("ExpiredIteratorException") => {
                    // Iterators live 5 minutes; a slow processor outlives them. Resume after
                    // the last record read.
                    self.metrics
                        .read_errors
                        .with_label_values(&["expired_iterator"])
                        .inc();
                    tracing::debug!(stream = %self.stream, shard = %self.shard_id, "shard iterator expired; renewing");
                }
                Err(e) => {
                    let err = kinesis_error(&e);
                    self.metrics
                        .read_errors
                        .with_label_values(&[err.reason.as_str()])
                        .inc();
                    iterator = Some(it);
                    let delay = backoff.next_delay();
                    log_read_error(&self.stream, &self.shard_id, "GetRecords", &err, delay);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// A new iterator; None (logged and counted) when the call failed.
    async fn get_iterator(&self, position: &StartPosition) -> Option<String> {
        let res = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(&self.shard_id)
            .shard_iterator_type(position.iterator_type())
            .set_starting_sequence_number(position.sequence_number())
            .set_timestamp(position.timestamp())
            .send()
            .await;
        match res {
            Ok(out) => {
                if out.shard_iterator.is_none() {
                    tracing::warn!(stream = %self.stream, shard = %self.shard_id, "GetShardIterator returned no iterator");
                }
                out.shard_iterator
            }
            Err(e) => {
                let err = kinesis_error(&e);
                self.metrics
                    .read_errors
                    .with_label_values(&[err.reason.as_str()])
                    .inc();
                log_read_error(
                    &self.stream,
                    &self.shard_id,
                    "GetShardIterator",
                    &err,
                    Duration::ZERO,
                );
                None
            }
        }
    }
}

pub(super) fn log_read_error(
    stream: &str,
    shard: &str,
    op: &str,
    err: &crate::error::ApiError,
    delay: Duration,
) {
    if err.reason.is_retriable() {
        if err.reason == FailureReason::Throttled {
            tracing::debug!(%stream, %shard, %op, error = %err, ?delay, "read throttled; backing off");
        } else {
            tracing::warn!(%stream, %shard, %op, error = %err, ?delay, "read failed; retrying");
        }
    } else {
        // Not fixed by retrying (missing stream, permissions); keep trying slowly so the shard
        // resumes once the cause is fixed, and make it loud.
        tracing::error!(%stream, %shard, %op, error = %err, ?delay, "read failed with a non-retriable error; retrying");
    }
}
