//! Settings of the producer: `[aws]`, `[kinesis]` (the KPL-style producer), `[streams]`,
//! `[reference]`, `[progress]`, beside the runtime's `[admin]`, `[shutdown]` and `[log]`.
//! What to generate comes from the command line (`--seed`, `--sales`, ...), not from here.

use std::time::Duration;

use flowline_aws::AwsSettings;
use flowline_kinesis::producer::ProducerConfig;
use flowline_model::StreamKind;
use flowline_runtime::{Problems, ServiceConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
    pub kinesis: ProducerConfig,
    pub streams: Streams,
    pub reference: Reference,
    pub progress: Progress,
}

/// Stream names (DESIGN.md section 2).
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
    pub fn name(&self, kind: StreamKind) -> &str {
        match kind {
            StreamKind::Customers => &self.customers,
            StreamKind::Addresses => &self.addresses,
            StreamKind::Sales => &self.sales,
        }
    }
}

/// Where the reference data (items, promos) goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Reference {
    pub bucket: String,
    /// Upload the reference data before generating sales.
    pub upload: bool,
}

impl Default for Reference {
    fn default() -> Self {
        Self {
            bucket: "analytics-lake".into(),
            upload: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// Interval of progress log lines when stderr is not a terminal.
    #[serde(with = "humantime_serde")]
    pub log_interval: Duration,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            log_interval: Duration::from_secs(5),
        }
    }
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
        problems.extend_messages(self.kinesis.validate_at("kinesis"));
        for (setting, name) in [
            ("streams.customers", &self.streams.customers),
            ("streams.addresses", &self.streams.addresses),
            ("streams.sales", &self.streams.sales),
        ] {
            problems.check(!name.is_empty(), setting, "must not be empty");
        }
        problems.check(
            !self.reference.bucket.is_empty(),
            "reference.bucket",
            "must not be empty",
        );
        problems.check(
            !self.progress.log_interval.is_zero(),
            "progress.log_interval",
            "must be greater than 0",
        );
    }
}
