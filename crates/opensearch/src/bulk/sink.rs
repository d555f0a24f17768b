//! The handle callers use: `enqueue`/`send` documents, `flush`, `close`.
//!
//! Memory is bounded by two semaphores taken in `enqueue` and released when a document's
//! fate is settled, so queued, batched, in-flight and to-be-retried documents all count:
//! while OpenSearch is down the sink fills up and `enqueue` waits (backpressure) instead of
//! buffering without bound.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::IntGauge;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;

use super::api::BulkApi;
use super::config::BulkConfig;
use super::dispatcher::{Dispatcher, Msg, Pending};
use super::doc::BulkDoc;
use super::metrics::BulkMetrics;
use super::outcome::{Ack, Delivery};
use crate::OpenSearchError;

/// Room in the channel for flush requests beyond the documents.
const FLUSH_SLACK: usize = 16;

/// State shared by the handle and the dispatcher task.
pub(crate) struct Shared {
    pub(crate) docs: Arc<Semaphore>,
    pub(crate) bytes: Arc<Semaphore>,
    pub(crate) flush: AtomicBool,
    pub(crate) closing: AtomicBool,
    pub(crate) wake: Notify,
}

/// A document's share of the sink's capacity; given back when dropped.
pub(crate) struct Held {
    _doc: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
    gauge: IntGauge,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Indexes documents with `_bulk` requests; cheap to clone, one background task per sink.
/// Dropping the last clone without [`BulkSink::close`] aborts the task: documents not yet
/// settled then resolve with [`OpenSearchError::SinkClosed`].
#[derive(Clone)]
pub struct BulkSink {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    metrics: BulkMetrics,
    max_docs: usize,
    max_bytes: usize,
    task: Mutex<Option<AbortOnDropHandle<()>>>,
}

impl BulkSink {
    /// Starts the sink's task on the current tokio runtime.
    pub fn start(
        api: Arc<dyn BulkApi>,
        config: BulkConfig,
        metrics: BulkMetrics,
    ) -> Result<Self, OpenSearchError> {
        let problems = config.problems("bulk");
        if !problems.is_empty() {
            let text: Vec<String> = problems.iter().map(|(s, m)| format!("{s}: {m}")).collect();
            return Err(OpenSearchError::InvalidConfig(text.join("; ")));
        }
        let shared = Arc::new(Shared {
            docs: Arc::new(Semaphore::new(config.max_buffered_docs)),
            bytes: Arc::new(Semaphore::new(config.max_buffered_bytes)),
            flush: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            wake: Notify::new(),
        });
        // The permits bound the documents in the channel; the slack is for flush requests.
        let (tx, rx) = mpsc::channel(config.max_buffered_docs + FLUSH_SLACK);
        let (max_docs, max_bytes) = (config.max_buffered_docs, config.max_buffered_bytes);
        let dispatcher = Dispatcher::new(api, config, metrics.clone(), shared.clone(), rx);
        let task = AbortOnDropHandle::new(tokio::spawn(dispatcher.run()));
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                shared,
                metrics,
                max_docs,
                max_bytes,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// Queues `doc`, waiting while the sink is full; the returned [`Ack`] resolves with the
    /// document's fate. Documents with the same index and id are written in the order they
    /// were queued.
    pub async fn enqueue(&self, doc: BulkDoc) -> Result<Ack, OpenSearchError> {
        let inner = &self.inner;
        // Serialised here, on the caller's task, so encoding spreads over callers.
        let lines = doc.encode()?;
        let closed = |_| OpenSearchError::SinkClosed;
        let doc_permit = inner
            .shared
            .docs
            .clone()
            .acquire_owned()
            .await
            .map_err(closed)?;
        // A document larger than the whole byte budget takes all of it, and goes alone.
        let weight = lines.len().clamp(1, inner.max_bytes) as u32;
        let byte_permit = inner
            .shared
            .bytes
            .clone()
            .acquire_many_owned(weight)
            .await
            .map_err(closed)?;
        inner.metrics.buffered_docs.inc();
        let held = Held {
            _doc: doc_permit,
            _bytes: byte_permit,
            gauge: inner.metrics.buffered_docs.clone(),
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        let mut hasher = DefaultHasher::new();
        (&doc.index, &doc.id).hash(&mut hasher);
        let pending = Pending {
            key: hasher.finish(),
            family: doc.family,
            versioned: doc.version.is_some(),
            id: doc.id,
            lines,
            ack: ack_tx,
            _held: held,
            attempts: 0,
            first_sent: None,
        };
        inner
            .tx
            .send(Msg::Doc(pending))
            .await
            .map_err(|_| OpenSearchError::SinkClosed)?;
        Ok(Ack(ack_rx))
    }

    /// Queues `doc` and waits for its fate.
    pub async fn send(&self, doc: BulkDoc) -> Result<Delivery, OpenSearchError> {
        self.enqueue(doc).await?.await
    }

    /// Sends the documents queued so far without waiting for the flush interval.
    pub fn flush(&self) {
        match self.inner.tx.try_send(Msg::Flush) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            // Flush requests pile up faster than they are taken: flushing what the task
            // has received is as good.
            Err(TrySendError::Full(_)) => {
                self.inner.shared.flush.store(true, Ordering::Release);
                self.inner.shared.wake.notify_one();
            }
        }
    }

    /// Documents held by the sink (queued, in flight or waiting for a retry); never more
    /// than `bulk.max_buffered_docs`.
    pub fn buffered(&self) -> usize {
        self.inner.max_docs - self.inner.shared.docs.available_permits()
    }

    /// Refuses new documents and returns once everything queued before is settled. With no
    /// `retry_deadline` this waits for OpenSearch as long as it takes: put a timeout around
    /// it and drop the sink to give up.
    pub async fn close(&self) {
        let shared = &self.inner.shared;
        shared.closing.store(true, Ordering::Release);
        shared.docs.close();
        shared.bytes.close();
        shared.wake.notify_one();
        let mut task = self.inner.task.lock().await;
        if let Some(handle) = task.as_mut() {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "bulk sink task failed");
            }
            *task = None;
        }
    }
}
