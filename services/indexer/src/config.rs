//! Settings of the indexer: `[aws]`, `[opensearch]` beside the runtime's `[admin]`,
//! `[shutdown]` and `[log]`.

use flowline_aws::AwsSettings;
use flowline_opensearch::OpenSearchSettings;
use flowline_runtime::{Problems, ServiceConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub aws: AwsSettings,
    pub opensearch: OpenSearchSettings,
}

impl ServiceConfig for Config {
    fn validate(&self, problems: &mut Problems) {
        problems.extend(self.aws.problems("aws"));
        problems.extend(self.opensearch.problems("opensearch"));
    }

    fn env_aliases() -> &'static [(&'static str, &'static str)] {
        &OpenSearchSettings::ENV_ALIASES
    }
}
