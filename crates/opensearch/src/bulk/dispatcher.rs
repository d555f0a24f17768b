//! The sink's task: batches documents, sends at most `max_in_flight` bulk requests, judges
//! every item, retries what failed for a transient reason, and settles each document's ack.
//! It is the only retry layer.
//!
//! Order per id: at most one document per (index, id) is *active* (batched, in flight or
//! waiting for a retry); later ones are parked until it is settled. So a retried old
//! version can never overwrite a newer one, and a batch never holds the same id twice,
//! whatever the concurrency and however failed items are regrouped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};

use super::api::{BulkApi, BulkResponse, TransportError};
use super::config::BulkConfig;
use super::metrics::BulkMetrics;
use super::naming::IndexFamily;
use super::outcome::{Delivery, FailureKind, ItemVerdict, Rejection, judge};
use super::sink::{Held, Shared};
use crate::OpenSearchError;

/// One queued document.
pub(crate) struct Pending {
    /// Hash of (index, id). A collision only serialises two unrelated documents.
    pub(crate) key: u64,
    pub(crate) family: IndexFamily,
    pub(crate) versioned: bool,
    pub(crate) id: String,
    pub(crate) lines: Bytes,
    pub(crate) ack: oneshot::Sender<Result<Delivery, OpenSearchError>>,
    /// Capacity given back when the document is settled and dropped.
    pub(crate) _held: Held,
    /// Failed attempts so far.
    pub(crate) attempts: u32,
    pub(crate) first_sent: Option<Instant>,
}

/// What the handle sends the task, in one channel so a flush covers exactly the documents
/// queued before it.
pub(crate) enum Msg {
    Doc(Pending),
    Flush,
}

type Sent = (Result<BulkResponse, TransportError>, Duration);

pub(crate) struct Dispatcher {
    api: Arc<dyn BulkApi>,
    cfg: BulkConfig,
    metrics: BulkMetrics,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Msg>,
    /// The batch being filled, and when its first document came.
    open: Vec<Pending>,
    open_bytes: usize,
    open_since: Option<Instant>,
    /// Full batches waiting for an in-flight slot.
    sealed: VecDeque<Vec<Pending>>,
    in_flight: JoinSet<Sent>,
    batches: HashMap<Id, Vec<Pending>>,
    /// Groups of failed documents by (due time, sequence).
    retries: BTreeMap<(Instant, u64), Vec<Pending>>,
    retry_seq: u64,
    active: HashSet<u64>,
    parked: HashMap<u64, VecDeque<Pending>>,
    /// After a failed request nothing is sent until then, and only one request at a time
    /// until one succeeds, so a struggling cluster is probed rather than hammered.
    paused_until: Option<Instant>,
    request_failures: u32,
}

impl Dispatcher {
    pub(crate) fn new(
        api: Arc<dyn BulkApi>,
        cfg: BulkConfig,
        metrics: BulkMetrics,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Msg>,
    ) -> Self {
        Self {
            api,
            cfg,
            metrics,
            shared,
            rx,
            open: Vec::new(),
            open_bytes: 0,
            open_since: None,
            sealed: VecDeque::new(),
            in_flight: JoinSet::new(),
            batches: HashMap::new(),
            retries: BTreeMap::new(),
            retry_seq: 0,
            active: HashSet::new(),
            parked: HashMap::new(),
            paused_until: None,
            request_failures: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut receiving = true;
        let mut rx_closed = false;
        loop {
            let now = Instant::now();
            if self.closing() && !rx_closed {
                // Queued documents can still be received; new sends fail.
                self.rx.close();
                rx_closed = true;
            }
            self.release_due_retries(now);
            self.seal_if_due(now);
            self.send_ready(now);
            if !receiving && self.is_idle() {
                return;
            }
            let wake = self.next_wake(now);
            tokio::select! {
                Some(joined) = self.in_flight.join_next_with_id(), if !self.in_flight.is_empty() => {
                    self.complete(joined);
                }
                msg = self.rx.recv(), if receiving => match msg {
                    Some(msg) => {
                        self.take(msg);
                        // Take what else is queued, but let a full batch go out first.
                        while self.sealed.is_empty() {
                            let Ok(msg) = self.rx.try_recv() else { break };
                            self.take(msg);
                        }
                    }
                    None => receiving = false,
                },
                _ = self.shared.wake.notified() => {}
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            }
        }
    }

    fn closing(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    fn is_idle(&self) -> bool {
        self.open.is_empty()
            && self.sealed.is_empty()
            && self.batches.is_empty()
            && self.retries.is_empty()
            && self.parked.is_empty()
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let flush_at = self.open_since.map(|t| t + self.cfg.flush_interval);
        let retry_at = self.retries.keys().next().map(|(t, _)| *t);
        // Once the pause is over, only a finished request can make room: no timer then.
        let resume_at = self
            .paused_until
            .filter(|t| *t > now && !self.sealed.is_empty());
        [flush_at, retry_at, resume_at].into_iter().flatten().min()
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Doc(p) => self.admit(p),
            Msg::Flush => self.seal(),
        }
    }

    fn admit(&mut self, p: Pending) {
        if self.active.insert(p.key) {
            self.push_open(p);
        } else {
            self.parked.entry(p.key).or_default().push_back(p);
        }
    }

    fn push_open(&mut self, p: Pending) {
        let len = p.lines.len();
        if !self.open.is_empty() && self.open_bytes + len > self.cfg.max_bytes {
            self.seal();
        }
        if self.open.is_empty() {
            self.open_since = Some(Instant::now());
        }
        self.open_bytes += len;
        self.open.push(p);
        if self.open.len() >= self.cfg.max_actions || self.open_bytes >= self.cfg.max_bytes {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if !self.open.is_empty() {
            self.sealed.push_back(std::mem::take(&mut self.open));
        }
        self.open_bytes = 0;
        self.open_since = None;
    }

    fn seal_if_due(&mut self, now: Instant) {
        let asked = self.shared.flush.swap(false, Ordering::AcqRel) || self.closing();
        let stale = self
            .open_since
            .is_some_and(|t| now >= t + self.cfg.flush_interval);
        if asked || stale {
            self.seal();
        }
    }

    /// Due retries go out with the next request, without waiting for the flush interval.
    fn release_due_retries(&mut self, now: Instant) {
        let mut released = false;
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            for p in entry.remove() {
                self.push_open(p);
            }
            released = true;
        }
        if released {
            self.seal();
        }
    }

    fn send_ready(&mut self, now: Instant) {
        if self.paused_until.is_some_and(|t| now < t) {
            return;
        }
        let limit = if self.request_failures > 0 {
            1
        } else {
            self.cfg.max_in_flight
        };
        while self.batches.len() < limit {
            let Some(mut batch) = self.sealed.pop_front() else {
                return;
            };
            let size = batch.iter().map(|p| p.lines.len()).sum();
            let mut body = BytesMut::with_capacity(size);
            for p in &mut batch {
                body.extend_from_slice(&p.lines);
                p.first_sent.get_or_insert(now);
            }
            self.metrics.request_bytes.observe(size as f64);
            self.metrics.request_actions.observe(batch.len() as f64);
            self.metrics.in_flight.inc();
            let api = self.api.clone();
            let body = body.freeze();
            let handle = self.in_flight.spawn(async move {
                let started = Instant::now();
                let result = api.bulk(body).await;
                (result, started.elapsed())
            });
            self.batches.insert(handle.id(), batch);
        }
    }

    fn complete(&mut self, joined: Result<(Id, Sent), JoinError>) {
        let (id, result) = match joined {
            Ok((id, (result, elapsed))) => {
                self.metrics.request_duration.observe(elapsed.as_secs_f64());
                (id, result)
            }
            // A panic in the transport: nothing is known about the request.
            Err(e) => (
                e.id(),
                Err(TransportError::Unreachable(format!(
                    "bulk task failed: {e}"
                ))),
            ),
        };
        let Some(batch) = self.batches.remove(&id) else {
            return;
        };
        self.metrics.in_flight.dec();
        let now = Instant::now();
        match result {
            Ok(response) if response.items.len() == batch.len() => {
                self.complete_items(batch, response, now);
            }
            Ok(response) => {
                let e = TransportError::BadResponse(format!(
                    "{} items for {} documents",
                    response.items.len(),
                    batch.len()
                ));
                self.request_failed(batch, e, now);
            }
            Err(e) => self.request_failed(batch, e, now),
        }
    }

    fn complete_items(&mut self, batch: Vec<Pending>, response: BulkResponse, now: Instant) {
        self.count_request("success");
        let total = batch.len();
        let mut retry = Vec::new();
        let mut last_error = String::new();
        for (p, item) in batch.into_iter().zip(response.items) {
            match judge(&item.index, p.versioned) {
                ItemVerdict::Done(delivery) => {
                    let m = &self.metrics;
                    match &delivery {
                        Delivery::Indexed => m.count(&m.indexed, p.family),
                        Delivery::Superseded => m.count(&m.superseded, p.family),
                        Delivery::Rejected(r) => {
                            m.item_failed(r.kind);
                            m.rejected
                                .with_label_values(&[p.family.as_str(), r.kind.as_str()])
                                .inc();
                        }
                    }
                    self.resolve(p, Ok(delivery));
                }
                ItemVerdict::Retry(kind) => {
                    self.metrics.item_failed(kind);
                    if let Some(e) = &item.index.error {
                        last_error = format!("{}: {}", e.error_type, e.full_reason());
                    } else {
                        last_error = format!("item status {}", item.index.status);
                    }
                    retry.push(p);
                }
            }
        }
        if retry.is_empty() {
            self.request_failures = 0;
            self.paused_until = None;
            return;
        }
        let delay = if retry.len() == total {
            // Every item pushed back: the cluster is saturated, slow down like for a
            // failed request instead of sending new batches at full speed.
            self.request_failures += 1;
            let delay = self.backoff(self.request_failures);
            self.paused_until = Some(now + delay);
            delay
        } else {
            self.request_failures = 0;
            let attempts = retry.iter().map(|p| p.attempts).max().unwrap_or(0);
            self.backoff(attempts + 1)
        };
        self.schedule_retry(retry, now + delay, "item", &last_error);
    }

    fn request_failed(&mut self, mut batch: Vec<Pending>, error: TransportError, now: Instant) {
        match &error {
            TransportError::Status {
                status: 413,
                reason,
            } => {
                self.count_request("too_large");
                // Above the cluster's http.max_content_length: halve the batch (the
                // halves keep unique ids) or, for a single document, refuse it.
                if batch.len() > 1 {
                    let second = batch.split_off(batch.len() / 2);
                    self.sealed.push_front(second);
                    self.sealed.push_front(batch);
                } else if let Some(p) = batch.pop() {
                    let kind = FailureKind::Other;
                    self.metrics.item_failed(kind);
                    let m = &self.metrics;
                    m.rejected
                        .with_label_values(&[p.family.as_str(), kind.as_str()])
                        .inc();
                    let rejection = Rejection {
                        status: 413,
                        error_type: "request_entity_too_large".into(),
                        reason: reason.clone(),
                        kind,
                    };
                    self.resolve(p, Ok(Delivery::Rejected(rejection)));
                }
            }
            TransportError::Status { status, reason }
                if (400..500).contains(status) && !matches!(status, 408 | 429) =>
            {
                self.count_request("client_error");
                // Authentication, permissions, a wrong URL: no retry fixes these, and
                // dead-lettering the documents would lose them. Fail them loudly.
                tracing::error!(status, reason, "OpenSearch refused a bulk request");
                for p in batch {
                    let e = OpenSearchError::BulkRequestRejected {
                        status: *status,
                        reason: reason.clone(),
                    };
                    self.fail(p, e, "request_rejected");
                }
            }
            _ => {
                self.count_request(match &error {
                    TransportError::Unreachable(_) => "unreachable",
                    TransportError::BadResponse(_) => "bad_response",
                    TransportError::Status { status: 429, .. } => "throttled",
                    TransportError::Status { .. } => "server_error",
                });
                self.request_failures += 1;
                let delay = self.backoff(self.request_failures);
                tracing::warn!(
                    error = %error,
                    failures = self.request_failures,
                    retry_in = ?delay,
                    "bulk request failed; retrying"
                );
                self.paused_until = Some(now + delay);
                self.schedule_retry(batch, now + delay, "request", &error.to_string());
            }
        }
    }

    fn schedule_retry(&mut self, docs: Vec<Pending>, due: Instant, reason: &str, error: &str) {
        let mut group = Vec::with_capacity(docs.len());
        for mut p in docs {
            p.attempts += 1;
            let past_deadline = match (self.cfg.retry_deadline, p.first_sent) {
                (Some(deadline), Some(first)) => due.duration_since(first) > deadline,
                _ => false,
            };
            if past_deadline {
                let e = OpenSearchError::RetriesExhausted {
                    id: p.id.clone(),
                    attempts: p.attempts,
                    last_error: error.to_owned(),
                };
                self.fail(p, e, "deadline");
            } else {
                self.metrics.retries.with_label_values(&[reason]).inc();
                group.push(p);
            }
        }
        if !group.is_empty() {
            self.retry_seq += 1;
            self.retries.insert((due, self.retry_seq), group);
        }
    }

    /// Exponential backoff with full jitter: uniform in [0, min(max, initial * 2^(n-1))].
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .cfg
            .initial_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.cfg.max_backoff);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    fn count_request(&self, outcome: &str) {
        self.metrics.requests.with_label_values(&[outcome]).inc();
    }

    fn fail(&mut self, p: Pending, error: OpenSearchError, reason: &str) {
        self.metrics
            .failed
            .with_label_values(&[p.family.as_str(), reason])
            .inc();
        self.resolve(p, Err(error));
    }

    /// Settles `p` (its capacity is given back as it drops) and activates the next parked
    /// document with the same key.
    fn resolve(&mut self, p: Pending, result: Result<Delivery, OpenSearchError>) {
        let key = p.key;
        // The caller may have stopped waiting; the document is settled all the same.
        let _ = p.ack.send(result);
        let next = self.parked.get_mut(&key).and_then(VecDeque::pop_front);
        match next {
            Some(next) => {
                if self.parked.get(&key).is_some_and(VecDeque::is_empty) {
                    self.parked.remove(&key);
                }
                self.push_open(next);
            }
            None => {
                self.active.remove(&key);
            }
        }
    }
}
