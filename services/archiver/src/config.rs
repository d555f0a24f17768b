//! Settings of the archiver: `[aws]`, `[consumer]` (the KCL-style consumer), `[streams]`
//! (which stream holds what), `[lake]` (bucket, `[lake.buffer]` hints with per-stream
//! overrides, `[lake.upload]`) and `[firehose]` (streams delivered through a Firehose
//! delivery stream instead), beside the runtime's `[admin]`, `[shutdown]` and `[log]`.
//!
//! ```toml
//! [lake]
//! bucket = "analytics-lake"
//! [lake.buffer]                 # Firehose-style hints: whichever comes first
//! size_hint_bytes = 67108864
//! interval = "60s"
//! memory_budget_bytes = 536870912
//! [lake.buffer.streams.sales]   # per-stream override
//! interval = "15s"
//! [firehose.streams]            # these streams go through Firehose instead
//! "order-metrics" = "order-metrics-to-s3"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use flowline_aws::AwsSettings;
use flowline_kinesis::consumer::ConsumerConfig;
use flowline_lake::{FirehoseConfig, LakeConfig, RetryConfig};
use flowline_runtime::{Problems, ServiceConfig};
use serde::{Deserialize, Serialize};

use crate::routing::InputKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
    pub consumer: ConsumerConfig,
    pub streams: Streams,
    pub lake: LakeConfig,
    pub firehose: FirehoseSettings,
}

impl Default for Config {
    fn default() -> Self {
        let streams = Streams::default();
        Self {
            aws: AwsSettings::default(),
            consumer: ConsumerConfig {
                application_name: "archiver".into(),
                streams: streams.all().map(|(name, _)| name.to_string()).collect(),
                // Inside the runtime's default drain timeout (30 s), leaving time for
                // the writer's final flush after the processors' own.
                shutdown_timeout: Duration::from_secs(20),
                ..ConsumerConfig::default()
            },
            streams,
            lake: LakeConfig::default(),
            firehose: FirehoseSettings::default(),
        }
    }
}

/// Stream names (DESIGN.md section 2): tell the archiver how to file each stream it reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Streams {
    pub customers: String,
    pub addresses: String,
    pub sales: String,
    pub orders_enriched: String,
    pub order_metrics: String,
    pub dead_letters: String,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            customers: "customers".into(),
            addresses: "addresses".into(),
            sales: "sales".into(),
            orders_enriched: "orders-enriched".into(),
            order_metrics: "order-metrics".into(),
            dead_letters: "dead-letters".into(),
        }
    }
}

impl Streams {
    pub fn all(&self) -> impl Iterator<Item = (&str, InputKind)> {
        [
            (self.customers.as_str(), InputKind::Raw),
            (self.addresses.as_str(), InputKind::Raw),
            (self.sales.as_str(), InputKind::Raw),
            (self.orders_enriched.as_str(), InputKind::Orders),
            (self.order_metrics.as_str(), InputKind::Metrics),
            (self.dead_letters.as_str(), InputKind::DeadLetters),
        ]
        .into_iter()
    }

    pub fn kind_of(&self, stream: &str) -> Option<InputKind> {
        self.all().find(|(name, _)| *name == stream).map(|(_, k)| k)
    }
}

/// Streams delivered through Firehose (PutRecordBatch) instead of the lake writer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FirehoseSettings {
    /// Input stream name → delivery stream name.
    pub streams: BTreeMap<String, String>,
    pub max_batch_records: usize,
    pub max_batch_bytes: usize,
    pub retry: RetryConfig,
}

impl Default for FirehoseSettings {
    fn default() -> Self {
        let d = FirehoseConfig::default();
        Self {
            streams: BTreeMap::new(),
            max_batch_records: d.max_batch_records,
            max_batch_bytes: d.max_batch_bytes,
            retry: d.retry,
        }
    }
}

impl FirehoseSettings {
    /// The delivery settings of `stream`, when it goes through Firehose.
    pub fn config_for(&self, stream: &str) -> Option<FirehoseConfig> {
        self.streams
            .get(stream)
            .map(|d| self.with_delivery_stream(d))
    }

    fn with_delivery_stream(&self, delivery_stream: &str) -> FirehoseConfig {
        FirehoseConfig {
            delivery_stream: delivery_stream.to_string(),
            max_batch_records: self.max_batch_records,
            max_batch_bytes: self.max_batch_bytes,
            retry: self.retry.clone(),
        }
    }

    fn validate(&self, problems: &mut Problems) {
        // Batch and retry settings once, the delivery stream name per stream.
        for (setting, message) in self
            .with_delivery_stream("placeholder")
            .validate("firehose")
        {
            problems.push(&setting, message);
        }
        for (stream, delivery) in &self.streams {
            for (setting, message) in self.with_delivery_stream(delivery).validate("firehose") {
                if setting == "firehose.delivery_stream" {
                    problems.push(&format!("firehose.streams.{stream}"), message);
                }
            }
        }
    }
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
        for problem in self.consumer.validate() {
            // The library's messages start with the setting's name.
            let (setting, message) = problem.split_once(' ').unwrap_or(("consumer", &problem));
            problems.push(setting.trim_end_matches(':'), message);
        }
        for (setting, name) in [
            ("streams.customers", &self.streams.customers),
            ("streams.addresses", &self.streams.addresses),
            ("streams.sales", &self.streams.sales),
            ("streams.orders_enriched", &self.streams.orders_enriched),
            ("streams.order_metrics", &self.streams.order_metrics),
            ("streams.dead_letters", &self.streams.dead_letters),
        ] {
            problems.check(!name.is_empty(), setting, "must not be empty");
        }
        for stream in &self.consumer.streams {
            problems.check(
                self.streams.kind_of(stream).is_some(),
                "consumer.streams",
                format!("{stream:?} is none of the [streams] names, so it cannot be filed"),
            );
        }
        for stream in self.firehose.streams.keys() {
            problems.check(
                self.consumer.streams.contains(stream),
                &format!("firehose.streams.{stream}"),
                "is not one of consumer.streams",
            );
        }
        problems.extend(self.lake.validate("lake"));
        self.firehose.validate(problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &Config) -> Vec<String> {
        let mut p = Problems::default();
        c.validate(&mut p);
        p.iter().map(str::to_string).collect()
    }

    #[test]
    fn defaults_are_valid_and_read_every_stream() {
        let c = Config::default();
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
        assert_eq!(c.consumer.streams.len(), 6);
        assert_eq!(c.lake.bucket, "analytics-lake");
        assert_eq!(c.streams.kind_of("order-metrics"), Some(InputKind::Metrics));
        assert_eq!(c.streams.kind_of("nope"), None);
    }

    #[test]
    fn problems_name_the_setting() {
        let mut c = Config::default();
        c.consumer.streams.push("unknown".into());
        c.firehose
            .streams
            .insert("sales".into(), "bad name!".into());
        c.firehose.streams.insert("other".into(), "ok".into());
        c.firehose.max_batch_records = 501;
        c.lake.buffer.size_hint_bytes = 0;
        let p = problems(&c).join("\n");
        for setting in [
            "consumer.streams",
            "firehose.streams.sales",
            "firehose.streams.other",
            "firehose.max_batch_records",
            "lake.buffer.size_hint_bytes",
        ] {
            assert!(p.contains(setting), "{setting} missing in {p}");
        }
        assert_eq!(
            c.firehose.config_for("sales").unwrap().delivery_stream,
            "bad name!"
        );
    }
}
