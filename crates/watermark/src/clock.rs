//! Wall-clock time, injected so the watermark logic stays deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use flowline_model::Timestamp;

/// Where services get `now` from; the logic itself only takes `now` arguments.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock, in UTC milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Timestamp::UNIX_EPOCH.saturating_add_millis(ms)
    }
}

/// A clock that moves only when told to (tests, replays). Clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.millis())))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.millis(), Ordering::SeqCst);
    }

    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::UNIX_EPOCH.saturating_add_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::new(Timestamp::from_millis(1_000).unwrap());
        let c2 = c.clone();
        assert_eq!(c.now().millis(), 1_000);
        c.advance_millis(500);
        assert_eq!(c2.now().millis(), 1_500);
        c2.set(Timestamp::from_millis(42).unwrap());
        assert_eq!(c.now().millis(), 42);
    }

    #[test]
    fn system_clock_is_after_2020() {
        let t = SystemClock.now();
        assert!(t > "2020-01-01T00:00:00Z".parse().unwrap());
    }
}
