//! Watermark settings (serde, embeddable in a service's layered config).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every duration is humantime (`"2s"`, `"500ms"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatermarkConfig {
    /// How far behind the greatest event time seen on a shard an event may
    /// still arrive and count as on time.
    #[serde(with = "humantime_serde")]
    pub out_of_orderness: Duration,
    /// How long a shard must be caught up (`MillisBehindLatest` = 0) with
    /// empty reads before it stops holding the watermark back.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// An idle flag published by a copy is trusted for this long after its
    /// publication; older (the owner may have died with records waiting) the
    /// shard holds the watermark at its last event time again until a live
    /// owner republishes it. Must exceed the publication interval.
    #[serde(with = "humantime_serde")]
    pub idle_publication_ttl: Duration,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        Self {
            out_of_orderness: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            idle_publication_ttl: Duration::from_secs(60),
        }
    }
}

impl WatermarkConfig {
    /// Problems with the settings, each naming the setting (empty when valid).
    /// `prefix` is where the section sits in the service config, e.g. `"watermark"`.
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut p = Vec::new();
        let day = Duration::from_secs(86_400);
        if self.out_of_orderness > day {
            p.push(format!("{prefix}.out_of_orderness must be at most 1 day"));
        }
        if self.idle_timeout.is_zero() || self.idle_timeout > day {
            p.push(format!(
                "{prefix}.idle_timeout must be more than 0 and at most 1 day"
            ));
        }
        if self.idle_publication_ttl.is_zero() || self.idle_publication_ttl > day {
            p.push(format!(
                "{prefix}.idle_publication_ttl must be more than 0 and at most 1 day"
            ));
        }
        p
    }

    pub(crate) fn out_of_orderness_ms(&self) -> i64 {
        millis(self.out_of_orderness)
    }

    pub(crate) fn idle_timeout_ms(&self) -> i64 {
        millis(self.idle_timeout)
    }

    pub(crate) fn idle_publication_ttl_ms(&self) -> i64 {
        millis(self.idle_publication_ttl)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_design() {
        let c = WatermarkConfig::default();
        assert!(c.validate("watermark").is_empty());
        assert_eq!(c.out_of_orderness, Duration::from_secs(2));
    }

    #[test]
    fn humantime_and_partial_config() {
        let c: WatermarkConfig = serde_json::from_str(r#"{"idle_timeout":"1m"}"#).unwrap();
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.out_of_orderness, Duration::from_secs(2));
    }

    #[test]
    fn validate_names_the_setting() {
        let c = WatermarkConfig {
            idle_timeout: Duration::ZERO,
            out_of_orderness: Duration::from_secs(90_000),
            ..Default::default()
        };
        let p = c.validate("aggregator.watermark");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("aggregator.watermark.out_of_orderness"));
        assert!(p[1].contains("aggregator.watermark.idle_timeout"));
    }
}
