//! Window settings (serde, embeddable in a service's layered config).

use std::time::Duration;

use flowline_model::Dimension;
use serde::{Deserialize, Serialize};

/// Every duration is humantime (`"1m"`, `"90s"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowConfig {
    /// Length of the tumbling windows, aligned to the Unix epoch.
    #[serde(with = "humantime_serde")]
    pub length: Duration,
    /// How long after a window's end (measured against the watermark) late
    /// events still update it and re-emit it with the next revision.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// Dimensions to aggregate by (`all`, `category`, `state`).
    pub dimensions: Vec<Dimension>,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            length: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(60),
            dimensions: Dimension::ALL_DIMENSIONS.to_vec(),
        }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

impl WindowConfig {
    /// Problems with the settings, each naming the setting (empty when valid).
    /// `prefix` is where the section sits in the service config, e.g. `"windows"`.
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut p = Vec::new();
        if self.length < Duration::from_secs(1)
            || self.length > DAY
            || !self.length.subsec_nanos().is_multiple_of(1_000_000)
        {
            p.push(format!(
                "{prefix}.length must be between 1s and 1 day, in whole milliseconds"
            ));
        }
        if self.allowed_lateness > DAY {
            p.push(format!("{prefix}.allowed_lateness must be at most 1 day"));
        }
        if self.dimensions.is_empty() {
            p.push(format!(
                "{prefix}.dimensions must name at least one dimension"
            ));
        }
        for (i, d) in self.dimensions.iter().enumerate() {
            if self.dimensions[..i].contains(d) {
                p.push(format!("{prefix}.dimensions lists {:?} twice", d.as_str()));
            }
        }
        p
    }

    pub(crate) fn length_ms(&self) -> i64 {
        self.length.as_millis() as i64
    }

    pub(crate) fn lateness_ms(&self) -> i64 {
        self.allowed_lateness.as_millis() as i64
    }

    /// The configured dimensions in output order.
    pub(crate) fn sorted_dimensions(&self) -> Vec<Dimension> {
        let mut d = self.dimensions.clone();
        d.sort();
        d.dedup();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = WindowConfig::default();
        assert!(c.validate("windows").is_empty());
        assert_eq!(c.length, Duration::from_secs(60));
        assert_eq!(c.allowed_lateness, Duration::from_secs(60));
        assert_eq!(c.dimensions.len(), 3);
    }

    #[test]
    fn partial_config_with_humantime() {
        let c: WindowConfig =
            serde_json::from_str(r#"{"length":"5m","dimensions":["state"]}"#).unwrap();
        assert_eq!(c.length, Duration::from_secs(300));
        assert_eq!(c.allowed_lateness, Duration::from_secs(60));
        assert_eq!(c.dimensions, vec![Dimension::State]);
    }

    #[test]
    fn validate_names_each_setting() {
        let c = WindowConfig {
            length: Duration::from_micros(1_500_500),
            allowed_lateness: Duration::from_secs(100_000),
            dimensions: vec![Dimension::All, Dimension::All],
        };
        let p = c.validate("aggregator.windows");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("aggregator.windows.length"));
        assert!(p[1].starts_with("aggregator.windows.allowed_lateness"));
        assert!(p[2].starts_with("aggregator.windows.dimensions"));
        let empty = WindowConfig {
            dimensions: vec![],
            ..Default::default()
        };
        assert_eq!(empty.validate("w").len(), 1);
    }
}
