//! Settings of the join core (embedded in the enrichment-joiner's layered
//! config and used as-is by the rebuild tool, so both join alike).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JoinConfig {
    /// Watermark progress past a sale's `event_time` after which a sale whose
    /// customer, address, item or promo is still missing is emitted
    /// `partial` (DESIGN.md section 4, "join timeout").
    #[serde(with = "humantime_serde")]
    pub join_timeout: Duration,
    /// Entities kept in the read-through cache, split evenly between
    /// customers and addresses. In shared mode a hot entity is still read
    /// once per advance in which its sales pass what was read before.
    pub cache_entities: usize,
    /// Versions read per cache miss (newest first, one Query) and the most
    /// kept per cached entity.
    pub versions_per_entity: usize,
    /// True when this core is the only writer of the version store (the
    /// rebuild tool, tests, benchmarks). Cached entries then stay complete
    /// for all times, because every later version goes through this core.
    /// False in the service, where other copies may write versions too: an
    /// entry read at watermark W is trusted only for times < W, unless the
    /// service finds it reads every customer and address shard itself
    /// (`JoinCore::set_exclusive`).
    pub exclusive_writer: bool,
    /// Bound on sales held in memory (buffered, pending and waiting). At the
    /// bound `add_sale` refuses with a retriable error so the caller stops
    /// reading sales; `restore_shard` loads a shard's sales regardless.
    pub max_pending_sales: usize,
    /// Buffered version and pending-sale writes that trigger a flush.
    pub write_batch: usize,
    /// Version reads in flight at once when an advance reads ahead for the
    /// sales it releases (see `read_ahead`).
    pub read_concurrency: usize,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            join_timeout: Duration::from_secs(60),
            cache_entities: 200_000,
            versions_per_entity: 4,
            exclusive_writer: false,
            max_pending_sales: 1_000_000,
            write_batch: 500,
            read_concurrency: 16,
        }
    }
}

impl JoinConfig {
    /// Problems with the settings, each naming the setting under `prefix`
    /// (e.g. `join`); empty when valid.
    pub fn validate_at(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, name: &str, why: &str| {
            if !ok {
                problems.push(format!("{prefix}.{name}: {why}"));
            }
        };
        check(
            self.join_timeout.as_millis() <= i64::MAX as u128 / 2,
            "join_timeout",
            "is too large",
        );
        check(
            self.versions_per_entity >= 1 && self.versions_per_entity <= 100,
            "versions_per_entity",
            "must be 1..=100",
        );
        check(
            self.max_pending_sales >= 1,
            "max_pending_sales",
            "must be at least 1",
        );
        check(
            self.write_batch >= 1 && self.write_batch <= 100_000,
            "write_batch",
            "must be 1..=100000",
        );
        check(
            self.read_concurrency >= 1 && self.read_concurrency <= 1_000,
            "read_concurrency",
            "must be 1..=1000",
        );
        problems
    }

    pub fn validate(&self) -> Vec<String> {
        self.validate_at("join")
    }

    pub(crate) fn timeout_millis(&self) -> i64 {
        i64::try_from(self.join_timeout.as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = JoinConfig::default();
        assert!(c.validate().is_empty());
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"join_timeout\":\"1m\""), "{json}");
        let back: JoinConfig = serde_json::from_str(r#"{"join_timeout": "90s"}"#).unwrap();
        assert_eq!(back.join_timeout, Duration::from_secs(90));
        assert_eq!(back.cache_entities, c.cache_entities);
    }

    #[test]
    fn problems_name_the_setting() {
        let c = JoinConfig {
            versions_per_entity: 0,
            write_batch: 0,
            ..JoinConfig::default()
        };
        let p = c.validate_at("joiner.join");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("joiner.join.versions_per_entity"));
        assert!(p[1].starts_with("joiner.join.write_batch"));
    }
}
