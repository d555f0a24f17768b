//! Prometheus metrics of the join core, all defined here. The core keeps
//! plain counters ([`JoinStats`]); the service calls [`JoinMetrics::observe`]
//! after each advance, so the hot path never touches atomics.

use std::sync::Mutex;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::stats::JoinStats;

pub struct JoinMetrics {
    pending: IntGauge,
    waiting: IntGauge,
    unconfirmed: IntGauge,
    cached_entities: IntGauge,
    cache_lookups: IntCounterVec,
    store_reads: IntCounter,
    emitted: IntCounterVec,
    /// Last stats seen, to turn absolute counts into counter increments.
    last: Mutex<JoinStats>,
}

impl JoinMetrics {
    pub fn register(registry: &Registry) -> Result<JoinMetrics, prometheus::Error> {
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let pending = gauge(
            "flowline_join_pending_sales",
            "Sales held until the join watermark reaches their event time.",
        )?;
        let waiting = gauge(
            "flowline_join_waiting_sales",
            "Due sales waiting for a missing customer, address, item or promo.",
        )?;
        let unconfirmed = gauge(
            "flowline_join_unconfirmed_orders",
            "Emitted orders not yet confirmed as delivered downstream.",
        )?;
        let cached_entities = gauge(
            "flowline_join_cached_entities",
            "Customers and addresses in the version cache.",
        )?;
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "flowline_join_cache_lookups_total",
                "Version lookups by cache result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(cache_lookups.clone()))?;
        let store_reads = IntCounter::new(
            "flowline_join_store_reads_total",
            "Version store queries made on cache misses.",
        )?;
        registry.register(Box::new(store_reads.clone()))?;
        let emitted = IntCounterVec::new(
            Opts::new(
                "flowline_join_orders_emitted_total",
                "Enriched orders emitted, by join status.",
            ),
            &["join_status"],
        )?;
        registry.register(Box::new(emitted.clone()))?;
        Ok(JoinMetrics {
            pending,
            waiting,
            unconfirmed,
            cached_entities,
            cache_lookups,
            store_reads,
            emitted,
            last: Mutex::new(JoinStats::default()),
        })
    }

    /// Publishes a stats snapshot from [`crate::JoinCore::stats`].
    pub fn observe(&self, s: &JoinStats) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        self.pending.set(s.pending as i64);
        self.waiting.set(s.waiting as i64);
        self.unconfirmed.set(s.unconfirmed as i64);
        self.cached_entities.set(s.cached_entities as i64);
        let delta = |now: u64, before: u64| now.saturating_sub(before);
        self.cache_lookups
            .with_label_values(&["hit"])
            .inc_by(delta(s.cache_hits, last.cache_hits));
        self.cache_lookups
            .with_label_values(&["miss"])
            .inc_by(delta(s.cache_misses, last.cache_misses));
        self.store_reads
            .inc_by(delta(s.store_reads, last.store_reads));
        self.emitted
            .with_label_values(&["complete"])
            .inc_by(delta(s.emitted_complete, last.emitted_complete));
        self.emitted
            .with_label_values(&["partial"])
            .inc_by(delta(s.emitted_partial, last.emitted_partial));
        *last = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_turns_totals_into_increments() {
        let registry = Registry::new();
        let m = JoinMetrics::register(&registry).unwrap();
        let mut s = JoinStats {
            pending: 3,
            cache_hits: 10,
            emitted_complete: 2,
            ..JoinStats::default()
        };
        m.observe(&s);
        s.cache_hits = 15;
        s.emitted_partial = 1;
        m.observe(&s);
        assert_eq!(m.cache_lookups.with_label_values(&["hit"]).get(), 15);
        assert_eq!(m.emitted.with_label_values(&["complete"]).get(), 2);
        assert_eq!(m.emitted.with_label_values(&["partial"]).get(), 1);
        assert_eq!(m.pending.get(), 3);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("flowline_join_")),
            "{names:?}"
        );
        assert!(
            JoinMetrics::register(&registry).is_err(),
            "duplicate registration"
        );
    }
}
