//! Checkpoint only after downstream acknowledgement (DESIGN.md section 4, Delivery).
//!
//! A processor hands over, per batch, "the checkpoint this batch allows" together with a
//! future that resolves when everything derived from the batch is acknowledged (Kinesis
//! PutRecords, OpenSearch bulk items, S3 uploads). One task per shard awaits those futures
//! in order and writes each checkpoint after its future succeeded, so the checkpoint never
//! passes a record whose outputs are not durable. The queue is bounded: a slow downstream
//! slows the processor, which slows the reader.

use std::future::Future;
use std::sync::Arc;

use flowline_kinesis::consumer::{Checkpoint, Checkpointer};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where checkpoints are written; the consumer's [`Checkpointer`], or a fake in tests.
pub trait CheckpointSink: Send + Sync + 'static {
    fn write(&self, at: Checkpoint) -> BoxFuture<'_, Result<(), flowline_kinesis::Error>>;
}

impl CheckpointSink for Checkpointer {
    fn write(&self, at: Checkpoint) -> BoxFuture<'_, Result<(), flowline_kinesis::Error>> {
        Box::pin(self.checkpoint_at(at))
    }
}

struct Entry {
    sink: Arc<dyn CheckpointSink>,
    at: Checkpoint,
    acknowledged: BoxFuture<'static, anyhow::Result<()>>,
}

/// One shard's queue of checkpoints waiting for acknowledgements.
pub struct AckedCheckpoints {
    tx: Option<mpsc::Sender<Entry>>,
    worker: Option<JoinHandle<()>>,
}

impl AckedCheckpoints {
    /// `capacity` batches may wait for acknowledgement; `on_failure` is called once when an
    /// acknowledgement finally fails or a checkpoint cannot be written (the service should
    /// stop: the records after the last checkpoint are then read again after a restart).
    pub fn new(
        capacity: usize,
        on_failure: impl Fn(anyhow::Error) + Send + Sync + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Entry>(capacity.max(1));
        let worker = tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                if let Err(e) = entry.acknowledged.await {
                    on_failure(e.context("downstream write failed; not checkpointing"));
                    return;
                }
                match entry.sink.write(entry.at.clone()).await {
                    Ok(()) => {}
                    // Another worker owns the shard now and resumes from the last checkpoint.
                    Err(flowline_kinesis::Error::LeaseLost(key)) => {
                        tracing::info!(lease = %key, "lease lost; dropping pending checkpoints");
                        return;
                    }
                    Err(e) => {
                        on_failure(anyhow::Error::new(e).context("writing a checkpoint"));
                        return;
                    }
                }
            }
        });
        Self {
            tx: Some(tx),
            worker: Some(worker),
        }
    }

    /// Queues checkpoint `at`, written once `acknowledged` succeeds and every earlier entry
    /// is written. Waits while the queue is full.
    pub async fn after(
        &self,
        sink: Arc<dyn CheckpointSink>,
        at: Checkpoint,
        acknowledged: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> anyhow::Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("checkpoint queue drained"))?;
        tx.send(Entry {
            sink,
            at,
            acknowledged: Box::pin(acknowledged),
        })
        .await
        .map_err(|_| anyhow::anyhow!("checkpoint queue stopped after a failure"))
    }

    /// Waits until every queued checkpoint is written (or the queue stopped on a failure).
    /// Call before `shard_ended` checkpoints SHARD_END and on shutdown.
    pub async fn drain(&mut self) {
        self.tx.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.await;
        }
    }
}

impl Drop for AckedCheckpoints {
    fn drop(&mut self) {
        // Lease lost: pending checkpoints belong to nobody any more.
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Checkpoint>>);

    impl CheckpointSink for Recorder {
        fn write(&self, at: Checkpoint) -> BoxFuture<'_, Result<(), flowline_kinesis::Error>> {
            self.0.lock().unwrap().push(at);
            Box::pin(async { Ok(()) })
        }
    }

    fn at(seq: &str) -> Checkpoint {
        Checkpoint::sequence(seq, 0)
    }

    #[tokio::test]
    async fn checkpoints_wait_for_their_acknowledgements_in_order() {
        let sink = Arc::new(Recorder::default());
        let failures = Arc::new(Mutex::new(Vec::new()));
        let f = failures.clone();
        let mut queue = AckedCheckpoints::new(8, move |e| f.lock().unwrap().push(e.to_string()));
        let (ack1, wait1) = oneshot::channel::<()>();
        let (ack2, wait2) = oneshot::channel::<()>();
        queue
            .after(sink.clone(), at("1"), async move {
                wait1.await.map_err(Into::into)
            })
            .await
            .unwrap();
        queue
            .after(sink.clone(), at("2"), async move {
                wait2.await.map_err(Into::into)
            })
            .await
            .unwrap();

        // The second batch is acknowledged first: nothing may be checkpointed yet.
        ack2.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(sink.0.lock().unwrap().is_empty());

        ack1.send(()).unwrap();
        queue.drain().await;
        assert_eq!(*sink.0.lock().unwrap(), vec![at("1"), at("2")]);
        assert!(failures.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_acknowledgement_stops_checkpointing_and_reports() {
        let sink = Arc::new(Recorder::default());
        let failures = Arc::new(Mutex::new(Vec::new()));
        let f = failures.clone();
        let mut queue = AckedCheckpoints::new(8, move |e| f.lock().unwrap().push(format!("{e:#}")));
        queue
            .after(sink.clone(), at("1"), async { Ok(()) })
            .await
            .unwrap();
        queue
            .after(sink.clone(), at("2"), async {
                Err(anyhow::anyhow!("PutRecords: record expired"))
            })
            .await
            .unwrap();
        queue
            .after(sink.clone(), at("3"), async { Ok(()) })
            .await
            .ok();
        queue.drain().await;
        assert_eq!(
            *sink.0.lock().unwrap(),
            vec![at("1")],
            "nothing after the failure"
        );
        let failures = failures.lock().unwrap();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].contains("record expired"), "{failures:?}");
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let sink = Arc::new(Recorder::default());
        let queue = AckedCheckpoints::new(1, |_| {});
        let (_never, wait) = oneshot::channel::<()>();
        // The worker takes the first entry and waits on it; one more fits in the queue.
        queue
            .after(sink.clone(), at("1"), async move {
                wait.await.map_err(Into::into)
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue
            .after(sink.clone(), at("2"), async { Ok(()) })
            .await
            .unwrap();
        let third = tokio::time::timeout(
            Duration::from_millis(100),
            queue.after(sink.clone(), at("3"), async { Ok(()) }),
        )
        .await;
        assert!(third.is_err(), "a full queue makes the processor wait");
    }
}
