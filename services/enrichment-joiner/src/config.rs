//! Settings of the enrichment-joiner: `[aws]`, `[consumer]` (the KCL-style consumer),
//! `[streams]` (which input stream is which), `[output]`, `[dead_letters]`, `[kinesis]`
//! (the producer of both), `[state]`, `[join]`, `[watermark]`, `[parse]`, `[reference]`,
//! `[emit]`, beside the runtime's `[admin]`, `[shutdown]` and `[log]`.

use std::time::Duration;

use flowline_aws::AwsSettings;
use flowline_join::JoinConfig;
use flowline_kinesis::consumer::{ConsumerConfig, InitialPosition};
use flowline_kinesis::producer::ProducerConfig;
use flowline_model::{ParseConfig, StreamKind};
use flowline_runtime::{Problems, ServiceConfig};
use flowline_watermark::WatermarkConfig;
use serde::{Deserialize, Serialize};

pub const APPLICATION: &str = "enrichment-joiner";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
    /// `streams` is filled from `[streams]` (the one place naming the inputs).
    pub consumer: ConsumerConfig,
    pub streams: Streams,
    pub output: Output,
    pub dead_letters: DeadLettersSection,
    pub kinesis: ProducerConfig,
    pub state: State,
    pub join: JoinConfig,
    pub watermark: WatermarkConfig,
    pub parse: ParseConfig,
    pub reference: Reference,
    pub emit: Emit,
}

impl Default for Config {
    fn default() -> Self {
        let streams = Streams::default();
        Self {
            aws: AwsSettings::default(),
            consumer: ConsumerConfig {
                application_name: APPLICATION.into(),
                streams: streams.all(),
                // Empty reads drive idleness (DESIGN.md section 4, Watermarks).
                process_empty_batches: true,
                // The joiner needs every version ever written, not only new ones.
                initial_position: InitialPosition::TrimHorizon,
                ..ConsumerConfig::default()
            },
            streams,
            output: Output::default(),
            dead_letters: DeadLettersSection::default(),
            kinesis: ProducerConfig::pipeline_stage(),
            state: State::default(),
            join: JoinConfig::default(),
            watermark: WatermarkConfig::default(),
            parse: ParseConfig::default(),
            reference: Reference::default(),
            emit: Emit::default(),
        }
    }
}

impl Config {
    /// The consumer settings with the input streams from `[streams]`.
    pub fn consumer_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            streams: self.streams.all(),
            process_empty_batches: true,
            ..self.consumer.clone()
        }
    }
}

/// Input stream names (DESIGN.md section 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Streams {
    pub customers: String,
    pub addresses: String,
    pub sales: String,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            customers: "customers".into(),
            addresses: "addresses".into(),
            sales: "sales".into(),
        }
    }
}

impl Streams {
    pub fn all(&self) -> Vec<String> {
        vec![
            self.customers.clone(),
            self.addresses.clone(),
            self.sales.clone(),
        ]
    }

    pub fn kind(&self, stream: &str) -> Option<StreamKind> {
        StreamKind::ALL
            .into_iter()
            .find(|k| self.name(*k) == stream)
    }

    pub fn name(&self, kind: StreamKind) -> &str {
        match kind {
            StreamKind::Customers => &self.customers,
            StreamKind::Addresses => &self.addresses,
            StreamKind::Sales => &self.sales,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Output {
    pub stream: String,
}

impl Default for Output {
    fn default() -> Self {
        Self {
            stream: "orders-enriched".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeadLettersSection {
    pub stream: String,
}

impl Default for DeadLettersSection {
    fn default() -> Self {
        Self {
            stream: "dead-letters".into(),
        }
    }
}

/// The DynamoDB state table (string keys `pk`, `sk`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub table: String,
    /// Create the table (on-demand) when it does not exist.
    pub create_table: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            table: "enrichment-joiner-state".into(),
            create_table: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceFormat {
    /// `reference/raw/*/*.csv`
    Csv,
    /// `reference/clean/*/*.parquet`
    Parquet,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Reference {
    pub bucket: String,
    pub format: ReferenceFormat,
    /// How often the objects' ETags are checked; changed objects are loaded again.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for Reference {
    fn default() -> Self {
        Self {
            bucket: "analytics-lake".into(),
            format: ReferenceFormat::Csv,
            refresh_interval: Duration::from_secs(60),
        }
    }
}

/// The emission loop: flush state, publish watermarks, checkpoint, advance, emit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Emit {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How often the input streams' shards are listed (an open shard nobody has published
    /// yet holds the join watermark).
    #[serde(with = "humantime_serde")]
    pub shard_list_interval: Duration,
    /// Sales examined per release at most: a large backlog is released in steps, with
    /// input batches handled between them, so reading and metrics never stall.
    pub max_release: usize,
}

impl Default for Emit {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            shard_list_interval: Duration::from_secs(10),
            max_release: 2_000,
        }
    }
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
        for p in self.consumer_config().validate() {
            problems.push("consumer", p);
        }
        for p in self.kinesis.validate() {
            problems.push("kinesis", p);
        }
        for p in self.join.validate() {
            problems.push("join", p);
        }
        for p in self.watermark.validate("watermark") {
            problems.push("watermark", p);
        }
        for p in self.parse.validate() {
            problems.push("parse", p);
        }
        let mut names = self.streams.all();
        names.sort();
        names.dedup();
        if names.len() != 3 || names.iter().any(String::is_empty) {
            problems.push(
                "streams",
                "customers, addresses and sales must be three distinct names",
            );
        }
        for (setting, value) in [
            ("output.stream", &self.output.stream),
            ("dead_letters.stream", &self.dead_letters.stream),
            ("state.table", &self.state.table),
            ("reference.bucket", &self.reference.bucket),
        ] {
            if value.is_empty() {
                problems.push(setting, "must not be empty");
            }
        }
        if self.emit.interval.is_zero() {
            problems.push("emit.interval", "must be more than 0");
        }
        if self.emit.max_release == 0 {
            problems.push("emit.max_release", "must be at least 1");
        }
        if self.reference.refresh_interval.is_zero() {
            problems.push("reference.refresh_interval", "must be more than 0");
        }
        if self.emit.interval >= self.watermark.idle_publication_ttl {
            problems.push(
                "emit.interval",
                "must be shorter than watermark.idle_publication_ttl",
            );
        }
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
    fn defaults_are_valid_and_read_everything_from_the_start() {
        let c = Config::default();
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
        let consumer = c.consumer_config();
        assert_eq!(consumer.streams, ["customers", "addresses", "sales"]);
        assert_eq!(consumer.application_name, "enrichment-joiner");
        assert_eq!(consumer.initial_position, InitialPosition::TrimHorizon);
        assert!(consumer.process_empty_batches);
        assert_eq!(c.streams.kind("addresses"), Some(StreamKind::Addresses));
        assert_eq!(c.streams.kind("orders-enriched"), None);
    }

    #[test]
    fn problems_name_the_setting() {
        let mut c = Config::default();
        c.streams.sales = "customers".into();
        c.output.stream.clear();
        c.emit.interval = Duration::ZERO;
        let p = problems(&c).join("\n");
        assert!(p.contains("streams:"), "{p}");
        assert!(p.contains("output.stream:"), "{p}");
        assert!(p.contains("emit.interval:"), "{p}");
    }
}
