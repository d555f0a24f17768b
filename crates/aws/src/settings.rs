//! The `[aws]` section of a service's configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// AWS settings. Standard AWS environment variables win over these (they are the
/// operator's last word, as for every other setting).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AwsSettings {
    /// Region when `AWS_REGION` is not set; otherwise the SDK's provider chain decides.
    pub region: Option<String>,
    /// Endpoint for every AWS service (like `AWS_ENDPOINT_URL`), for LocalStack or moto.
    pub endpoint_url: Option<String>,
    /// Per-service endpoints (like `AWS_ENDPOINT_URL_<SERVICE>`).
    pub endpoints: ServiceEndpoints,
    /// Path-style S3 addressing; default: on whenever an S3 endpoint is overridden, since
    /// emulators do not serve virtual-hosted buckets.
    pub s3_force_path_style: Option<bool>,
    /// How long to wait for a TCP connection, so an unreachable endpoint fails fast.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// SDK attempts per call (1 = no SDK retries, for libraries that retry themselves).
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct ServiceEndpoints {
    pub kinesis: Option<String>,
    pub dynamodb: Option<String>,
    pub s3: Option<String>,
    pub firehose: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            endpoints: ServiceEndpoints::default(),
            s3_force_path_style: None,
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
        }
    }
}

impl AwsSettings {
    /// Problems as `(setting, message)`, with settings under `section` (usually `aws`).
    pub fn problems(&self, section: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let urls = [
            ("endpoint_url", &self.endpoint_url),
            ("endpoints.kinesis", &self.endpoints.kinesis),
            ("endpoints.dynamodb", &self.endpoints.dynamodb),
            ("endpoints.s3", &self.endpoints.s3),
            ("endpoints.firehose", &self.endpoints.firehose),
        ];
        for (key, url) in urls {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                out.push((
                    format!("{section}.{key}"),
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        if matches!(&self.region, Some(r) if r.trim().is_empty()) {
            out.push((format!("{section}.region"), "must not be empty".into()));
        }
        if self.max_attempts == 0 {
            out.push((
                format!("{section}.max_attempts"),
                "must be at least 1".into(),
            ));
        }
        if self.connect_timeout.is_zero() {
            out.push((
                format!("{section}.connect_timeout"),
                "must be greater than 0".into(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_setting() {
        let s = AwsSettings {
            endpoint_url: Some("localhost:4566".into()),
            max_attempts: 0,
            region: Some(" ".into()),
            ..AwsSettings::default()
        };
        let problems: Vec<String> = s.problems("aws").into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            problems,
            ["aws.endpoint_url", "aws.region", "aws.max_attempts"]
        );
        assert!(AwsSettings::default().problems("aws").is_empty());
    }
}
