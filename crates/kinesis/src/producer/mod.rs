//! KPL-style producer: batched, aggregated, rate-limited, retrying PutRecords with a per-record
//! acknowledgement.
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_kinesis::Client) -> flowline_kinesis::Result<()> {
//! use flowline_kinesis::producer::{Producer, ProducerConfig, ProducerMetrics, Record};
//! let metrics = ProducerMetrics::unregistered();
//! let producer = Producer::new(&client, "orders-enriched", ProducerConfig::default(), &metrics).await?;
//! let pending = producer.send(Record::new("order-1", &b"{}"[..])).await?; // waits for buffer room
//! let ack = pending.await?; // resolves once Kinesis acknowledged (or finally refused) the record
//! println!("{} {}", ack.shard_id, ack.sequence_number);
//! producer.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Semantics worth knowing:
//! - Delivery is at least once. A call that times out may still have been written; it is
//!   retried, so a record can land twice (as with the KPL). Downstream deduplicates by id.
//! - Order: records of one shard are sent in `send` order, but with several calls in flight
//!   or after a retry a later record can overtake an earlier one. For strict per-key order use
//!   `max_in_flight_requests = 1` (a retried record can still be overtaken).
//! - A record is only acknowledged once Kinesis accepted it; a failure is final (its TTL ran out
//!   or the error is not retriable) and carries the last error.
//!
//! Internals: `send` takes buffer permits (records and bytes) and hands the record to one
//! dispatcher task ([`dispatcher`]) which owns all state: per-shard aggregates and queues,
//! per-shard rate budgets, the retry schedule and the in-flight PutRecords calls. Permits are
//! returned when a record is acknowledged or fails, which is what bounds memory.

mod api;
mod budget;
mod config;
mod dispatcher;
mod metrics;
mod null;
mod record;
mod shard_queue;

#[cfg(test)]
mod tests;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

pub use api::{
    ListShardsApi, PutAck, PutEntry, PutRecordsApi, classify_sdk_error, without_sdk_retries,
};
pub use config::{
    MAX_PARTITION_KEY_CHARS, MAX_PUT_RECORDS, MAX_PUT_RECORDS_BYTES, MAX_RECORD_BYTES,
    ProducerConfig,
};
pub use metrics::ProducerMetrics;
pub use null::NullKinesis;

use crate::error::PutError;
use crate::shards::ShardMap;
use crate::{Error, Result};
use dispatcher::{Command, Dispatcher, Submitted};

/// A user record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition_key: String,
    /// Decimal 128-bit hash key that overrides the partition key's MD5 for routing.
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
}

impl Record {
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    pub fn with_explicit_hash_key(mut self, explicit_hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(explicit_hash_key.into());
        self
    }

    /// Bytes counted against Kinesis limits and the producer's buffer.
    pub fn size(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }

    fn validate(&self) -> Result<()> {
        let chars = self.partition_key.chars().count();
        if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
            return Err(Error::InvalidRecord(format!(
                "partition key must have 1..={MAX_PARTITION_KEY_CHARS} characters, has {chars}"
            )));
        }
        if let Some(ehk) = &self.explicit_hash_key {
            crate::shards::parse_hash_key(ehk)?;
        }
        if self.size() > MAX_RECORD_BYTES {
            return Err(Error::InvalidRecord(format!(
                "record of {} bytes (data plus partition key) exceeds the Kinesis limit of {MAX_RECORD_BYTES}",
                self.size()
            )));
        }
        Ok(())
    }
}

/// Acknowledgement of one user record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub shard_id: String,
    /// Sequence number of the Kinesis record carrying the user record.
    pub sequence_number: String,
    /// Position inside the aggregated Kinesis record; None when the record was sent on its own.
    pub sub_sequence_number: Option<u64>,
    /// PutRecords attempts it took.
    pub attempts: u32,
}

/// Resolves to the record's [`Ack`], or to its final error ([`Error::Put`], or [`Error::Closed`]
/// when the producer was dropped without `shutdown`).
#[must_use = "a record is only known to be delivered once its PendingAck resolves"]
#[derive(Debug)]
pub struct PendingAck {
    rx: oneshot::Receiver<Result<Ack, PutError>>,
}

impl Future for PendingAck {
    type Output = Result<Ack>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| match r {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(e)) => Err(Error::Put(e)),
            Err(_) => Err(Error::Closed),
        })
    }
}

/// Many pending acknowledgements, awaited together (e.g. everything derived from one input batch
/// before checkpointing it).
#[derive(Debug, Default)]
#[must_use]
pub struct AckSet {
    pending: Vec<PendingAck>,
}

impl AckSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, ack: PendingAck) {
        self.pending.push(ack);
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Waits for every record; the acks in send order, or the first error once all have settled.
    pub async fn wait(self) -> Result<Vec<Ack>> {
        futures::future::join_all(self.pending)
            .await
            .into_iter()
            .collect()
    }
}

impl Extend<PendingAck> for AckSet {
    fn extend<T: IntoIterator<Item = PendingAck>>(&mut self, iter: T) {
        self.pending.extend(iter);
    }
}

impl IntoFuture for AckSet {
    type Output = Result<Vec<Ack>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

/// Puts records into one stream. Share it behind an `Arc`; call [`Producer::shutdown`] before
/// dropping it (dropping it without shutdown aborts delivery of whatever is still buffered).
pub struct Producer {
    stream: Arc<str>,
    tx: mpsc::Sender<Command>,
    records: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    buffer_records: usize,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Producer {
    /// A producer for `stream` (name or ARN) through `client`. SDK retries are disabled on the
    /// internal copy of the client: the producer does all retrying. Reads the shard map first and
    /// fails if it cannot (e.g. the stream does not exist).
    pub async fn new(
        client: &aws_sdk_kinesis::Client,
        stream: impl Into<String>,
        config: ProducerConfig,
        metrics: &ProducerMetrics,
    ) -> Result<Self> {
        Self::with_api(
            Arc::new(without_sdk_retries(client)),
            stream,
            config,
            metrics,
        )
        .await
    }

    /// A producer over any implementation of the API (tests use a fake).
    pub async fn with_api<A: PutRecordsApi + ListShardsApi>(
        api: Arc<A>,
        stream: impl Into<String>,
        config: ProducerConfig,
        metrics: &ProducerMetrics,
    ) -> Result<Self> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        let stream: Arc<str> = stream.into().into();
        let map = initial_shard_map(api.as_ref(), &stream, &config).await?;
        let records = Arc::new(Semaphore::new(config.buffer_records));
        let bytes = Arc::new(Semaphore::new(config.buffer_bytes));
        // Records in the channel hold buffer permits, so the channel never holds more than
        // buffer_records records; the extra room is for flush/shutdown commands.
        let (tx, rx) = mpsc::channel(config.buffer_records + 64);
        let buffer_records = config.buffer_records;
        let dispatcher = Dispatcher::new(
            api,
            stream.clone(),
            config,
            metrics.for_stream(&stream),
            rx,
            map,
            records.clone(),
            bytes.clone(),
        );
        let task = tokio::spawn(dispatcher.run());
        Ok(Self {
            stream,
            tx,
            records,
            bytes,
            buffer_records,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Buffers the record, waiting while the buffer is full (backpressure). The returned
    /// [`PendingAck`] resolves when Kinesis acknowledged it or it finally failed.
    pub async fn send(&self, record: Record) -> Result<PendingAck> {
        record.validate()?;
        let size = record.size() as u32;
        let records = self
            .records
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let bytes = self
            .bytes
            .clone()
            .acquire_many_owned(size.max(1))
            .await
            .map_err(|_| Error::Closed)?;
        let (ack_tx, rx) = oneshot::channel();
        let cmd = Command::Record(Box::new(Submitted {
            record,
            ack_tx,
            permits: (records, bytes),
        }));
        self.tx.send(cmd).await.map_err(|_| Error::Closed)?;
        Ok(PendingAck { rx })
    }

    /// Like [`Producer::send`] but fails with [`Error::BufferFull`] instead of waiting.
    pub fn try_send(&self, record: Record) -> Result<PendingAck> {
        record.validate()?;
        let size = record.size() as u32;
        let full = |e| match e {
            tokio::sync::TryAcquireError::Closed => Error::Closed,
            tokio::sync::TryAcquireError::NoPermits => Error::BufferFull,
        };
        let records = self.records.clone().try_acquire_owned().map_err(full)?;
        let bytes = self
            .bytes
            .clone()
            .try_acquire_many_owned(size.max(1))
            .map_err(full)?;
        let (ack_tx, rx) = oneshot::channel();
        let cmd = Command::Record(Box::new(Submitted {
            record,
            ack_tx,
            permits: (records, bytes),
        }));
        self.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::BufferFull,
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })?;
        Ok(PendingAck { rx })
    }

    /// Sends every record (waiting for buffer room as needed) and returns their pending acks.
    pub async fn send_all(&self, records: impl IntoIterator<Item = Record>) -> Result<AckSet> {
        let mut set = AckSet::new();
        for r in records {
            set.push(self.send(r).await?);
        }
        Ok(set)
    }

    /// Sends everything buffered now, without waiting for the linger time, and waits until all
    /// records sent before this call are acknowledged or have failed.
    pub async fn flush(&self) -> Result<()> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(done_tx))
            .await
            .map_err(|_| Error::Closed)?;
        done_rx.await.map_err(|_| Error::Closed)
    }

    /// Stops accepting records, delivers everything buffered, waits for all acknowledgements and
    /// stops the background task. Later sends fail with [`Error::Closed`].
    pub async fn shutdown(&self) -> Result<()> {
        let Some(task) = self.task.lock().await.take() else {
            return Ok(());
        };
        // The dispatcher stops taking records once it sees this; sends racing with it fail
        // with Closed when their permits or channel send are refused.
        let _ = self.tx.send(Command::Shutdown).await;
        let result = task.await;
        self.records.close();
        self.bytes.close();
        result.map_err(|e| {
            tracing::error!(stream = %self.stream, error = %e, "producer task failed");
            Error::Closed
        })
    }
}

/// The first ListShards, retried on retriable errors (with the producer's backoff) for up to the
/// record TTL; a missing stream or denied access fails at once.
async fn initial_shard_map<A: ListShardsApi>(
    api: &A,
    stream: &str,
    config: &ProducerConfig,
) -> Result<ShardMap> {
    let deadline = tokio::time::Instant::now() + config.record_ttl;
    let mut cap = config.backoff_base;
    loop {
        match api.list_open_shards(stream).await {
            Ok(map) => return Ok(map),
            Err(e) if e.is_retriable() && tokio::time::Instant::now() + cap < deadline => {
                tracing::warn!(stream, error = %e, "ListShards failed; retrying");
                tokio::time::sleep(cap.mul_f64(rand::random::<f64>())).await;
                cap = (cap * 2).min(config.backoff_max);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().take() {
            let unsettled = self
                .buffer_records
                .saturating_sub(self.records.available_permits());
            if unsettled > 0 {
                tracing::warn!(stream = %self.stream, unsettled, "producer dropped without shutdown; abandoning unacknowledged records");
            }
            task.abort();
        }
    }
}
