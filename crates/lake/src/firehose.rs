//! Delivery through a Kinesis Data Firehose delivery stream (the managed alternative
//! to the writer: Firehose buffers and writes to S3 itself).
//!
//! Records are sent with PutRecordBatch in batches of at most 500 records and 4 MiB;
//! only the records a call reports as failed (per-record `ErrorCode`) are sent again,
//! after a backoff. Firehose concatenates record bytes as they are, so to get JSON
//! Lines in S3 each record should end with `\n`.

use std::time::Instant;

use aws_sdk_firehose::types::Record;
use aws_smithy_types::Blob;
use aws_smithy_types::retry::RetryConfig as SdkRetryConfig;
use backon::BackoffBuilder;
use bytes::Bytes;
use tracing::warn;

use crate::config::FirehoseConfig;
use crate::error::LakeError;
use crate::metrics::FirehoseMetrics;
use crate::retry::{attempt, backoff, classify};

pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;

/// The outcome of one record, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordAck {
    Delivered { record_id: String },
    Failed { error_code: String, message: String },
}

impl RecordAck {
    pub fn is_delivered(&self) -> bool {
        matches!(self, RecordAck::Delivered { .. })
    }
}

#[derive(Clone, Debug)]
pub struct FirehoseDelivery {
    client: aws_sdk_firehose::Client,
    config: FirehoseConfig,
    metrics: FirehoseMetrics,
}

impl FirehoseDelivery {
    /// Rebuilds `client` without SDK retries: retrying happens here, per record.
    pub fn new(
        client: &aws_sdk_firehose::Client,
        config: FirehoseConfig,
        metrics: FirehoseMetrics,
    ) -> Self {
        let conf = client
            .config()
            .to_builder()
            .retry_config(SdkRetryConfig::disabled())
            .build();
        FirehoseDelivery {
            client: aws_sdk_firehose::Client::from_conf(conf),
            config,
            metrics,
        }
    }

    /// Delivers `records`, one ack per record. A record over 1,000 KiB fails with
    /// `RecordTooLarge` without being sent. `Err` only for a call that cannot succeed
    /// (for example an unknown delivery stream or denied access).
    pub async fn deliver(&self, records: &[Bytes]) -> Result<Vec<RecordAck>, LakeError> {
        let mut acks: Vec<Option<RecordAck>> = vec![None; records.len()];
        let mut batch: Vec<usize> = Vec::new();
        let mut batch_bytes = 0;
        for (i, r) in records.iter().enumerate() {
            if r.len() > MAX_RECORD_BYTES {
                self.metrics.records_failed.inc();
                acks[i] = Some(RecordAck::Failed {
                    error_code: "RecordTooLarge".into(),
                    message: format!("{} bytes, limit {MAX_RECORD_BYTES}", r.len()),
                });
                continue;
            }
            if !batch.is_empty()
                && (batch.len() == self.config.max_batch_records
                    || batch_bytes + r.len() > self.config.max_batch_bytes)
            {
                self.send_batch(records, std::mem::take(&mut batch), &mut acks)
                    .await?;
                batch_bytes = 0;
            }
            batch.push(i);
            batch_bytes += r.len();
        }
        if !batch.is_empty() {
            self.send_batch(records, batch, &mut acks).await?;
        }
        Ok(acks
            .into_iter()
            .map(|a| a.expect("every record acked"))
            .collect())
    }

    async fn send_batch(
        &self,
        records: &[Bytes],
        batch: Vec<usize>,
        acks: &mut [Option<RecordAck>],
    ) -> Result<(), LakeError> {
        let cfg = &self.config.retry;
        let mut delays = backoff(cfg).build();
        let mut pending = batch;
        loop {
            let entries = pending
                .iter()
                .map(|&i| {
                    Record::builder()
                        .data(Blob::new(records[i].to_vec()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LakeError::encode("Firehose record", e))?;
            let req = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.config.delivery_stream)
                .set_records(Some(entries));
            let started = Instant::now();
            let result = attempt(cfg, "PutRecordBatch", async {
                req.send().await.map_err(|e| classify("PutRecordBatch", e))
            })
            .await;
            self.metrics
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
            let (failed, last_error) = match result {
                Ok(out) => {
                    let responses = out.request_responses();
                    if responses.len() != pending.len() {
                        return Err(LakeError::encode(
                            "Firehose response",
                            "entry count differs from the request",
                        ));
                    }
                    let mut failed = Vec::new();
                    let mut last = None;
                    for (&i, entry) in pending.iter().zip(responses) {
                        match entry.error_code() {
                            None => {
                                self.metrics.records_delivered.inc();
                                acks[i] = Some(RecordAck::Delivered {
                                    record_id: entry.record_id().unwrap_or_default().to_string(),
                                });
                            }
                            Some(code) => {
                                failed.push(i);
                                last = Some((
                                    code.to_string(),
                                    entry.error_message().unwrap_or_default().to_string(),
                                ));
                            }
                        }
                    }
                    (failed, last)
                }
                Err(e) if !e.is_retriable() => return Err(e),
                Err(e) => {
                    let code = match &e {
                        LakeError::Aws { code, .. } => code.clone(),
                        _ => "Error".into(),
                    };
                    (pending, Some((code, e.to_string())))
                }
            };
            if failed.is_empty() {
                return Ok(());
            }
            let (code, message) = last_error.unwrap_or_default();
            match delays.next() {
                Some(delay) => {
                    self.metrics.record_retries.inc_by(failed.len() as u64);
                    warn!(
                        records = failed.len(),
                        code,
                        ?delay,
                        "PutRecordBatch: records failed, retrying them"
                    );
                    tokio::time::sleep(delay).await;
                    pending = failed;
                }
                None => {
                    self.metrics.records_failed.inc_by(failed.len() as u64);
                    for i in failed {
                        acks[i] = Some(RecordAck::Failed {
                            error_code: code.clone(),
                            message: message.clone(),
                        });
                    }
                    return Ok(());
                }
            }
        }
    }
}
