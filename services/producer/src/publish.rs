//! Puts events on their streams through one KPL-style producer per stream, and keeps the
//! tally of what Kinesis acknowledged, so the summary and the exit code tell the truth.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use flowline_kinesis::producer::{PendingAck, Producer, ProducerConfig, ProducerMetrics, Record};
use flowline_model::StreamKind;
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Streams;
use crate::metrics::Metrics;

/// Pending acknowledgements waiting to be counted. Bounded: when counting falls behind,
/// sending waits, on top of the producer's own buffer limit.
const ACK_QUEUE: usize = 10_000;

/// Live counters, read by the progress display.
#[derive(Default)]
pub struct Counters {
    pub sent: [AtomicU64; 3],
    pub acked: [AtomicU64; 3],
    pub failed: [AtomicU64; 3],
    pub bytes: [AtomicU64; 3],
}

impl Counters {
    pub fn total(counter: &[AtomicU64; 3]) -> u64 {
        counter.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

fn index(kind: StreamKind) -> usize {
    match kind {
        StreamKind::Customers => 0,
        StreamKind::Addresses => 1,
        StreamKind::Sales => 2,
    }
}

pub struct Publisher {
    producers: [Producer; 3],
    acks: mpsc::Sender<(StreamKind, u64, PendingAck)>,
    tally: JoinHandle<()>,
    pub counters: Arc<Counters>,
}

impl Publisher {
    pub async fn new(
        kinesis: &aws_sdk_kinesis::Client,
        streams: &Streams,
        config: &ProducerConfig,
        registry: &Registry,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let kpl_metrics = ProducerMetrics::register(registry)?;
        let mut producers = Vec::with_capacity(3);
        for kind in StreamKind::ALL {
            let name = streams.name(kind);
            let producer = Producer::new(kinesis, name, config.clone(), &kpl_metrics)
                .await
                .with_context(|| format!("starting the producer for stream {name}"))?;
            producers.push(producer);
        }
        let producers: [Producer; 3] = producers
            .try_into()
            .map_err(|_| anyhow::anyhow!("one producer per stream"))?;
        let counters = Arc::new(Counters::default());
        let (acks, rx) = mpsc::channel(ACK_QUEUE);
        let tally = tokio::spawn(tally(rx, counters.clone(), metrics, streams.clone()));
        Ok(Self {
            producers,
            acks,
            tally,
            counters,
        })
    }

    /// Hands one event to its stream's producer; waits while buffers are full.
    pub async fn send(
        &self,
        kind: StreamKind,
        partition_key: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<()> {
        let bytes = data.len() as u64;
        let pending = self.producers[index(kind)]
            .send(Record::new(partition_key, data))
            .await?;
        self.counters.sent[index(kind)].fetch_add(1, Ordering::Relaxed);
        self.acks
            .send((kind, bytes, pending))
            .await
            .map_err(|_| anyhow::anyhow!("acknowledgement tally stopped"))?;
        Ok(())
    }

    /// Flushes everything buffered, waits for every acknowledgement, and returns the
    /// number of events that finally failed.
    pub async fn finish(self) -> anyhow::Result<u64> {
        for producer in &self.producers {
            producer
                .shutdown()
                .await
                .with_context(|| format!("flushing stream {}", producer.stream()))?;
        }
        drop(self.acks);
        self.tally.await.context("acknowledgement tally")?;
        Ok(Counters::total(&self.counters.failed))
    }
}

async fn tally(
    mut rx: mpsc::Receiver<(StreamKind, u64, PendingAck)>,
    counters: Arc<Counters>,
    metrics: Metrics,
    streams: Streams,
) {
    while let Some((kind, bytes, pending)) = rx.recv().await {
        let stream = streams.name(kind);
        match pending.await {
            Ok(_) => {
                counters.acked[index(kind)].fetch_add(1, Ordering::Relaxed);
                counters.bytes[index(kind)].fetch_add(bytes, Ordering::Relaxed);
                metrics.events.with_label_values(&[stream]).inc();
                metrics.bytes.with_label_values(&[stream]).inc_by(bytes);
            }
            Err(e) => {
                counters.failed[index(kind)].fetch_add(1, Ordering::Relaxed);
                let reason = match &e {
                    flowline_kinesis::Error::Put(p) => p.last_error.reason.as_str(),
                    flowline_kinesis::Error::Closed => "closed",
                    _ => "other",
                };
                metrics.failures.with_label_values(&[stream, reason]).inc();
                tracing::warn!(stream, error = %e, "event not delivered");
            }
        }
    }
}
