//! Which endpoint a service's client talks to, with the precedence users expect:
//! `AWS_ENDPOINT_URL_<SERVICE>`, then the per-service setting, then `AWS_ENDPOINT_URL`,
//! then the global setting, then AWS itself.

use crate::settings::AwsSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsService {
    Kinesis,
    DynamoDb,
    S3,
    Firehose,
}

impl AwsService {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kinesis => "kinesis",
            Self::DynamoDb => "dynamodb",
            Self::S3 => "s3",
            Self::Firehose => "firehose",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Self::Kinesis => "AWS_ENDPOINT_URL_KINESIS",
            Self::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Self::S3 => "AWS_ENDPOINT_URL_S3",
            Self::Firehose => "AWS_ENDPOINT_URL_FIREHOSE",
        }
    }
}

/// The overridden endpoint for `service`, or `None` for the real AWS endpoint.
pub fn resolve_endpoint(settings: &AwsSettings, service: AwsService) -> Option<String> {
    resolve_with(settings, service, |k| std::env::var(k).ok())
}

fn resolve_with(
    settings: &AwsSettings,
    service: AwsService,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let per_service = match service {
        AwsService::Kinesis => &settings.endpoints.kinesis,
        AwsService::DynamoDb => &settings.endpoints.dynamodb,
        AwsService::S3 => &settings.endpoints.s3,
        AwsService::Firehose => &settings.endpoints.firehose,
    };
    env(service.env_var())
        .filter(|v| !v.is_empty())
        .or_else(|| per_service.clone())
        .or_else(|| env("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()))
        .or_else(|| settings.endpoint_url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn precedence_is_service_env_then_service_setting_then_global_env_then_global_setting() {
        let mut s = AwsSettings {
            endpoint_url: Some("http://global-setting".into()),
            ..AwsSettings::default()
        };
        let k = AwsService::Kinesis;
        assert_eq!(
            resolve_with(&s, k, env(&[])).as_deref(),
            Some("http://global-setting")
        );
        let global = [("AWS_ENDPOINT_URL", "http://global-env")];
        assert_eq!(
            resolve_with(&s, k, env(&global)).as_deref(),
            Some("http://global-env")
        );
        s.endpoints.kinesis = Some("http://kinesis-setting".into());
        assert_eq!(
            resolve_with(&s, k, env(&global)).as_deref(),
            Some("http://kinesis-setting")
        );
        let both = [
            ("AWS_ENDPOINT_URL", "http://global-env"),
            ("AWS_ENDPOINT_URL_KINESIS", "http://kinesis-env"),
        ];
        assert_eq!(
            resolve_with(&s, k, env(&both)).as_deref(),
            Some("http://kinesis-env")
        );
        assert_eq!(
            resolve_with(&s, AwsService::S3, env(&both)).as_deref(),
            Some("http://global-env"),
            "another service's variable does not apply"
        );
        assert_eq!(resolve_with(&AwsSettings::default(), k, env(&[])), None);
    }
}
