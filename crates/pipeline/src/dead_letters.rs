//! Rejected records go to the `dead-letters` stream with their reason (DESIGN.md section 4,
//! Validation): never dropped, always counted.

use anyhow::Context as _;
use flowline_kinesis::producer::{PendingAck, Producer, ProducerConfig, ProducerMetrics, Record};
use flowline_model::{DeadLetter, ModelError, RecordSource};
use prometheus::{IntCounterVec, Opts, Registry};

/// `flowline_dead_letters_total{stage, error_type}`: error types are the model's bounded
/// names (`bad_json`, `missing_field`, `late`, ...).
#[derive(Clone)]
pub struct DeadLetterMetrics {
    pub records: IntCounterVec,
}

impl DeadLetterMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let records = IntCounterVec::new(
            Opts::new(
                "flowline_dead_letters_total",
                "Records sent to the dead-letter stream, by stage and error type.",
            ),
            &["stage", "error_type"],
        )?;
        registry.register(Box::new(records.clone()))?;
        Ok(Self { records })
    }
}

pub struct DeadLetters {
    stage: &'static str,
    producer: Producer,
    metrics: DeadLetterMetrics,
}

impl DeadLetters {
    pub async fn new(
        kinesis: &aws_sdk_kinesis::Client,
        stream: &str,
        config: ProducerConfig,
        producer_metrics: &ProducerMetrics,
        metrics: DeadLetterMetrics,
        stage: &'static str,
    ) -> anyhow::Result<Self> {
        let producer = Producer::new(kinesis, stream, config, producer_metrics)
            .await
            .with_context(|| format!("dead-letter stream {stream}"))?;
        Ok(Self {
            stage,
            producer,
            metrics,
        })
    }

    /// Sends a record the model rejected. The ack resolves once Kinesis holds the envelope;
    /// checkpoint past the record only after it.
    pub async fn rejected(
        &self,
        error: &ModelError,
        payload: &[u8],
        source: &RecordSource,
    ) -> anyhow::Result<PendingAck> {
        let letter = DeadLetter::from_model_error(self.stage, error, payload, source, crate::now());
        self.send(letter).await
    }

    /// Sends any envelope (for example `late` records, or mapping errors from OpenSearch).
    pub async fn send(&self, letter: DeadLetter) -> anyhow::Result<PendingAck> {
        self.metrics
            .records
            .with_label_values(&[self.stage, &letter.error_type])
            .inc();
        tracing::debug!(
            error_type = %letter.error_type,
            reason = %letter.reason,
            stream = %letter.source_stream,
            sequence_number = %letter.sequence_number,
            "dead letter"
        );
        // Spread over shards by origin; the same record always lands on the same shard.
        let key = format!("{}/{}", letter.shard_id, letter.sequence_number);
        let data = serde_json::to_vec(&letter).context("serialising a dead letter")?;
        Ok(self.producer.send(Record::new(key, data)).await?)
    }

    /// Flushes buffered envelopes and waits for their acknowledgements.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        Ok(self.producer.shutdown().await?)
    }
}
