//! Settings of the indexer: `[aws]`, `[consumer]` (the KCL-style consumer), `[input]` (which
//! stream carries what), `[dead_letters]`, `[kinesis]` (the producer writing dead letters),
//! `[opensearch]`, `[indices]`, `[templates]`, `[bulk]`, `[parse]` and `[checkpoints]`,
//! beside the runtime's `[admin]`, `[shutdown]` and `[log]`.

use flowline_aws::AwsSettings;
use flowline_kinesis::consumer::{ConsumerConfig, InitialPosition};
use flowline_kinesis::producer::ProducerConfig;
use flowline_model::ParseConfig;
use flowline_opensearch::OpenSearchSettings;
use flowline_opensearch::bulk::{BulkConfig, IndexNames};
use flowline_runtime::{Problems, ServiceConfig};
use serde::{Deserialize, Serialize};

pub const SERVICE_NAME: &str = "indexer";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
    /// `streams` is left empty: the consumer reads the streams named in `[input]`.
    pub consumer: ConsumerConfig,
    pub input: Input,
    pub dead_letters: DeadLetterSettings,
    pub kinesis: ProducerConfig,
    pub opensearch: OpenSearchSettings,
    /// Base names: daily indices `<base>-YYYY.MM.DD`, template `<base>` on `<base>-*`, alias
    /// `<base>`.
    pub indices: IndexNames,
    pub templates: Templates,
    pub bulk: BulkConfig,
    pub parse: ParseConfig,
    pub checkpoints: Checkpoints,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            aws: AwsSettings::default(),
            consumer: ConsumerConfig {
                application_name: SERVICE_NAME.into(),
                // An index is rebuilt from what the streams retain: start at the oldest
                // record rather than lose what was written before the first start.
                initial_position: InitialPosition::TrimHorizon,
                ..ConsumerConfig::default()
            },
            input: Input::default(),
            dead_letters: DeadLetterSettings::default(),
            kinesis: ProducerConfig::default(),
            opensearch: OpenSearchSettings::default(),
            indices: IndexNames::default(),
            templates: Templates::default(),
            bulk: BulkConfig::default(),
            parse: ParseConfig::default(),
            checkpoints: Checkpoints::default(),
        }
    }
}

/// The input streams (DESIGN.md section 2); an empty name turns that input off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Input {
    pub orders: String,
    pub metrics: String,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            orders: "orders-enriched".into(),
            metrics: "order-metrics".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeadLetterSettings {
    pub stream: String,
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        Self {
            stream: "dead-letters".into(),
        }
    }
}

/// Index templates registered at start (idempotent; updated when the definition changes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Templates {
    pub shards: u32,
    pub replicas: u32,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            shards: 1,
            replicas: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoints {
    /// Batches per shard whose bulk and dead-letter acknowledgements may be outstanding;
    /// the shard's reading waits beyond that.
    pub max_pending_batches: usize,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            max_pending_batches: 4,
        }
    }
}

impl Config {
    /// The consumer settings with the streams of `[input]`.
    pub fn consumer(&self) -> ConsumerConfig {
        let mut consumer = self.consumer.clone();
        consumer.streams = [&self.input.orders, &self.input.metrics]
            .into_iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        consumer
    }
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
        problems.check(
            self.consumer.streams.is_empty(),
            "consumer.streams",
            "is not used by the indexer: name the streams in input.orders and input.metrics",
        );
        problems.extend_messages(self.consumer().validate());
        problems.check(
            self.input.orders != self.input.metrics,
            "input.metrics",
            "must differ from input.orders",
        );
        problems.check(
            !self.input.orders.is_empty() || !self.input.metrics.is_empty(),
            "input",
            "at least one of input.orders and input.metrics must be set",
        );
        problems.check(
            !self.dead_letters.stream.is_empty(),
            "dead_letters.stream",
            "must not be empty",
        );
        problems.extend_messages(self.kinesis.validate_at("kinesis"));
        problems.extend(self.opensearch.problems("opensearch"));
        problems.extend(self.indices.problems("indices"));
        problems.check(
            self.indices.orders != self.indices.order_metrics,
            "indices.order_metrics",
            "must differ from indices.orders",
        );
        problems.check(
            (1..=1024).contains(&self.templates.shards),
            "templates.shards",
            "must be between 1 and 1024",
        );
        problems.check(
            self.templates.replicas <= 16,
            "templates.replicas",
            "must be at most 16",
        );
        problems.extend(self.bulk.problems("bulk"));
        problems.extend_messages(self.parse.validate());
        problems.check(
            (1..=1024).contains(&self.checkpoints.max_pending_batches),
            "checkpoints.max_pending_batches",
            "must be between 1 and 1024",
        );
    }

    fn env_aliases() -> &'static [(&'static str, &'static str)] {
        &OpenSearchSettings::ENV_ALIASES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design_and_are_valid() {
        let c = Config::default();
        let mut problems = Problems::default();
        c.validate(&mut problems);
        assert!(
            problems.is_empty(),
            "{:?}",
            problems.iter().collect::<Vec<_>>()
        );
        let consumer = c.consumer();
        assert_eq!(consumer.application_name, "indexer");
        assert_eq!(consumer.lease_table_name(), "indexer-leases");
        assert_eq!(consumer.streams, ["orders-enriched", "order-metrics"]);
        assert_eq!(c.dead_letters.stream, "dead-letters");
        assert_eq!(
            (c.indices.orders.as_str(), c.indices.order_metrics.as_str()),
            ("orders", "order-metrics")
        );
    }

    #[test]
    fn problems_name_the_setting() {
        let mut c = Config::default();
        c.input.metrics = c.input.orders.clone();
        c.indices.orders = "Orders".into();
        c.checkpoints.max_pending_batches = 0;
        c.consumer.streams = vec!["x".into()];
        let mut problems = Problems::default();
        c.validate(&mut problems);
        let text: Vec<&str> = problems.iter().collect();
        for setting in [
            "consumer.streams",
            "input.metrics",
            "indices.orders",
            "checkpoints.max_pending_batches",
        ] {
            assert!(
                text.iter().any(|p| p.starts_with(setting)),
                "{setting} missing in {text:?}"
            );
        }
    }
}
