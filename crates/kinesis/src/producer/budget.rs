//! Per-shard write budget: token buckets for records and bytes, checked together.
//!
//! Hand-written rather than `governor` because a record must pass both quotas atomically (governor
//! consumes from one limiter before the other can refuse) and the dispatcher needs to ask "how much
//! is available / when will n be" without consuming; it also runs on tokio's clock, so tests with
//! paused time are deterministic.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Bucket {
    /// Tokens per second; also the capacity (one second of burst, as Kinesis allows).
    rate: f64,
    tokens: f64,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Self {
            rate: rate as f64,
            tokens: rate as f64,
        }
    }

    fn refill(&mut self, elapsed: Duration) {
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.rate);
    }

    /// A demand larger than the capacity is admitted whenever the bucket is full (and drives it
    /// negative), so a record bigger than one second's budget is delayed, never stuck.
    fn effective(&self, n: f64) -> f64 {
        n.min(self.rate)
    }

    fn admits(&self, n: f64) -> bool {
        self.tokens >= self.effective(n)
    }

    fn wait_for(&self, n: f64) -> Duration {
        let missing = self.effective(n) - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.rate)
        }
    }
}

/// Records-per-second and bytes-per-second budget of one shard; `None` quotas are unlimited.
#[derive(Debug, Clone)]
pub(crate) struct ShardBudget {
    records: Option<Bucket>,
    bytes: Option<Bucket>,
    last: Instant,
}

impl ShardBudget {
    /// None when both limits are off.
    pub fn new(records_per_sec: u64, bytes_per_sec: u64, now: Instant) -> Option<Self> {
        let records = (records_per_sec > 0).then(|| Bucket::new(records_per_sec));
        let bytes = (bytes_per_sec > 0).then(|| Bucket::new(bytes_per_sec));
        (records.is_some() || bytes.is_some()).then_some(Self {
            records,
            bytes,
            last: now,
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        for b in [&mut self.records, &mut self.bytes].into_iter().flatten() {
            b.refill(elapsed);
        }
    }

    /// Whether `records` records of `bytes` bytes fit now.
    pub fn admits(&mut self, records: usize, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        self.records
            .as_ref()
            .is_none_or(|b| b.admits(records as f64))
            && self.bytes.as_ref().is_none_or(|b| b.admits(bytes as f64))
    }

    /// Takes one record of `bytes` bytes if it fits now.
    pub fn try_take(&mut self, bytes: usize, now: Instant) -> bool {
        if !self.admits(1, bytes, now) {
            return false;
        }
        if let Some(b) = &mut self.records {
            b.tokens -= 1.0;
        }
        if let Some(b) = &mut self.bytes {
            b.tokens -= bytes as f64;
        }
        true
    }

    /// When `records` records of `bytes` bytes will fit (now if they do).
    pub fn ready_at(&mut self, records: usize, bytes: usize, now: Instant) -> Instant {
        self.refill(now);
        let wait = [
            self.records.as_ref().map(|b| b.wait_for(records as f64)),
            self.bytes.as_ref().map(|b| b.wait_for(bytes as f64)),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_default();
        now + wait
    }

    /// A batch-worthy amount for a shard with `queued_records`/`queued_bytes` waiting: 50 ms of
    /// budget (or everything queued, if less). Waiting for this much avoids one-record requests
    /// each time a token trickles in.
    pub fn worthwhile(&self, queued_records: usize, queued_bytes: usize) -> (usize, usize) {
        let chunk = |b: &Option<Bucket>, queued: usize| match b {
            Some(b) => queued.min(((b.rate / 20.0) as usize).max(1)),
            None => queued,
        };
        (
            chunk(&self.records, queued_records),
            chunk(&self.bytes, queued_bytes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_both_quotas_and_refills() {
        let t0 = Instant::now();
        let mut b = ShardBudget::new(10, 1000, t0).unwrap();
        for _ in 0..10 {
            assert!(b.try_take(10, t0));
        }
        assert!(!b.try_take(10, t0), "records quota exhausted");
        assert_eq!(b.ready_at(1, 10, t0), t0 + Duration::from_millis(100));
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.try_take(10, t1));
        // After a second both buckets are full again; a demand above capacity is capped to it.
        let t2 = t1 + Duration::from_secs(1);
        assert!(b.admits(1, 1001, t2));
        assert!(b.try_take(1000, t2));
        assert!(!b.try_take(1, t2));
    }

    #[test]
    fn oversized_record_waits_for_a_full_bucket() {
        let t0 = Instant::now();
        let mut b = ShardBudget::new(0, 100, t0).unwrap();
        assert!(b.try_take(50, t0));
        assert!(!b.try_take(500, t0));
        assert_eq!(b.ready_at(1, 500, t0), t0 + Duration::from_millis(500));
        assert!(b.try_take(500, t0 + Duration::from_millis(500)));
        assert!(!b.try_take(1, t0 + Duration::from_millis(500)));
        assert!(ShardBudget::new(0, 0, t0).is_none());
    }
}
