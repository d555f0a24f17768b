//! Settings of the producer: `[aws]` beside the runtime's `[admin]`,
//! `[shutdown]` and `[log]`.

use flowline_aws::AwsSettings;

use flowline_runtime::{Problems, ServiceConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
    }
}
