//! Putting records on the target streams: one KPL-style producer per target (batching,
//! aggregation, per-shard limits, retries), an overall rate limit, and the tracker that
//! advances the position over acknowledged records only, in replay order.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flowline_kinesis::producer::{PendingAck, Producer, ProducerConfig, ProducerMetrics};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::options::Source;
use super::order::SortKey;
use super::position::PositionFile;
use super::progress::Progress;

/// Producer settings for a replay: the defaults, with in-flight calls and linger from
/// the flags. A smaller buffer than a service's and a longer record TTL: a replay has
/// no live deadline, and a record that waits behind a full buffer of a slow stream must
/// not time out just for waiting.
pub fn producer_config(in_flight: usize, linger: Duration) -> ProducerConfig {
    ProducerConfig {
        linger,
        max_in_flight_requests: in_flight,
        aggregation: true,
        buffer_records: 10_000,
        record_ttl: Duration::from_secs(120),
        ..ProducerConfig::default()
    }
}

/// One producer per distinct target stream.
pub struct Targets {
    by_source: Vec<Arc<Producer>>,
    all: Vec<Arc<Producer>>,
}

impl Targets {
    /// Fails when a target stream does not exist (the producer reads its shards first).
    pub async fn open(
        kinesis: &aws_sdk_kinesis::Client,
        sources: &[Source],
        config: &ProducerConfig,
    ) -> anyhow::Result<Targets> {
        let metrics = ProducerMetrics::unregistered();
        let mut by_name: BTreeMap<&str, Arc<Producer>> = BTreeMap::new();
        let mut by_source = Vec::new();
        for s in sources {
            if !by_name.contains_key(s.target.as_str()) {
                let p = Producer::new(kinesis, s.target.clone(), config.clone(), &metrics)
                    .await
                    .with_context(|| format!("opening target stream {}", s.target))?;
                by_name.insert(&s.target, Arc::new(p));
            }
            by_source.push(by_name[s.target.as_str()].clone());
        }
        Ok(Targets {
            by_source,
            all: by_name.into_values().collect(),
        })
    }

    pub fn for_source(&self, source: usize) -> &Producer {
        &self.by_source[source]
    }

    /// Delivers everything buffered and waits for every acknowledgement.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        for p in &self.all {
            p.shutdown()
                .await
                .with_context(|| format!("flushing {}", p.stream()))?;
        }
        Ok(())
    }
}

/// The overall rate limit (user records per second), or none.
pub struct Limiter(Option<DefaultDirectRateLimiter>);

impl Limiter {
    pub fn new(per_second: u32) -> Limiter {
        Limiter(NonZeroU32::new(per_second).map(|r| RateLimiter::direct(Quota::per_second(r))))
    }

    pub async fn wait(&self) {
        if let Some(l) = &self.0 {
            l.until_ready().await;
        }
    }
}

/// A sent record on its way to the tracker.
pub type Sent = (SortKey, PendingAck);

/// What the tracker ends with.
pub struct Tracked {
    pub file: PositionFile,
    /// Records acknowledged (and recorded) in this run.
    pub acked: u64,
    pub error: Option<anyhow::Error>,
}

/// Starts the tracker. It awaits acknowledgements in send order, so the position only
/// ever moves over a prefix of the replay order whose every record Kinesis accepted: a
/// record acknowledged after a gap waits until the gap is filled. The file is saved at
/// most every `save_every` while running and once at the end. The first failure (an
/// undeliverable record, an unwritable file) stops the position and cancels the run.
pub fn spawn_tracker(
    mut file: PositionFile,
    save_every: Duration,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> (mpsc::Sender<Sent>, JoinHandle<Tracked>) {
    // Bounded like the producers' buffers: pending acks hold no permits, so this is what
    // bounds their number.
    let (tx, mut rx) = mpsc::channel::<Sent>(20_000);
    let task = tokio::spawn(async move {
        let mut acked = 0;
        let mut error = None;
        let mut saved_at = Instant::now();
        let mut dirty = false;
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                _ = tokio::time::sleep_until(saved_at + save_every), if dirty => {
                    if let Err(e) = file.save() {
                        error = Some(e);
                        break;
                    }
                    (saved_at, dirty) = (Instant::now(), false);
                    continue;
                }
            };
            let Some((key, pending)) = next else { break };
            match pending.await {
                Ok(_) => {
                    file.advance(key);
                    acked += 1;
                    dirty = true;
                    progress.acked();
                }
                Err(e) => {
                    error = Some(anyhow::Error::new(e).context(format!(
                        "a {} record of {} ({}) was not delivered",
                        key.kind, key.hour, key.event_time
                    )));
                    break;
                }
            }
            if saved_at.elapsed() >= save_every {
                if let Err(e) = file.save() {
                    error = Some(e);
                    break;
                }
                (saved_at, dirty) = (Instant::now(), false);
            }
        }
        if error.is_some() {
            cancel.cancel();
        }
        if dirty && let Err(e) = file.save() {
            error.get_or_insert(e);
        }
        Tracked { file, acked, error }
    });
    (tx, task)
}
