//! Settings of the aggregator: `[aws]`, `[consumer]` (the KCL-style consumer), `[kinesis]`
//! (the producer of metrics and dead letters), `[output]`, `[windows]`, `[watermarks]`,
//! `[state]`, `[parse]`, beside the runtime's `[admin]`, `[shutdown]` and `[log]`.

use std::time::Duration;

use flowline_aws::AwsSettings;
use flowline_kinesis::consumer::ConsumerConfig;
use flowline_kinesis::producer::ProducerConfig;
use flowline_model::ParseConfig;
use flowline_runtime::{Problems, ServiceConfig};
use flowline_watermark::WatermarkConfig;
use flowline_window::WindowConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
    pub consumer: ConsumerConfig,
    pub kinesis: ProducerConfig,
    pub output: Output,
    pub windows: WindowConfig,
    pub watermarks: WatermarkConfig,
    pub state: State,
    pub parse: ParseConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            aws: AwsSettings::default(),
            consumer: ConsumerConfig {
                application_name: "aggregator".into(),
                streams: vec!["orders-enriched".into()],
                // Idle shards must be observed for the watermark to move without input.
                process_empty_batches: true,
                // Windows need every order, not only those after the first start.
                initial_position: flowline_kinesis::consumer::InitialPosition::TrimHorizon,
                ..Default::default()
            },
            kinesis: ProducerConfig::pipeline_stage(),
            output: Output::default(),
            windows: WindowConfig::default(),
            watermarks: WatermarkConfig::default(),
            state: State::default(),
            parse: ParseConfig::default(),
        }
    }
}

/// Output streams (DESIGN.md section 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Output {
    pub stream: String,
    pub dead_letters: String,
}

impl Default for Output {
    fn default() -> Self {
        Self {
            stream: "order-metrics".into(),
            dead_letters: "dead-letters".into(),
        }
    }
}

/// The window state table and the emitter's pace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// DynamoDB table (`pk`, `sk` string keys).
    pub table: String,
    /// Create the table at start when it does not exist (local stacks, tests).
    pub create_table: bool,
    /// How often the global watermark is read and due windows are emitted.
    #[serde(with = "humantime_serde")]
    pub emit_interval: Duration,
    /// How often an idle shard's watermark is republished.
    #[serde(with = "humantime_serde")]
    pub publish_interval: Duration,
    /// Kept after a window's allowed lateness before its state is deleted, so a
    /// copy with a slightly older view of the watermark cannot add to a deleted window.
    #[serde(with = "humantime_serde")]
    pub retention_grace: Duration,
}

impl Default for State {
    fn default() -> Self {
        Self {
            table: "aggregator-state".into(),
            create_table: false,
            emit_interval: Duration::from_secs(1),
            publish_interval: Duration::from_secs(1),
            retention_grace: Duration::from_secs(60),
        }
    }
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
        let mut library = self.consumer.validate();
        library.extend(self.kinesis.validate_at("kinesis"));
        library.extend(self.windows.validate("windows"));
        library.extend(self.watermarks.validate("watermarks"));
        library.extend(
            self.parse
                .validate()
                .into_iter()
                .map(|p| format!("parse.{p}")),
        );
        problems.extend_messages(library);
        for (setting, name) in [
            ("output.stream", &self.output.stream),
            ("output.dead_letters", &self.output.dead_letters),
            ("state.table", &self.state.table),
        ] {
            problems.check(!name.is_empty(), setting, "must not be empty");
        }
        problems.check(
            self.consumer.process_empty_batches,
            "consumer.process_empty_batches",
            "must be true: idle shards are recognised from empty reads, and without that \
             the watermark stops at the last event of an idle shard",
        );
        for (setting, d) in [
            ("state.emit_interval", self.state.emit_interval),
            ("state.publish_interval", self.state.publish_interval),
        ] {
            problems.check(!d.is_zero(), setting, "must be greater than 0");
        }
    }
}
