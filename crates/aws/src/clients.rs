//! One `load` builds every AWS client a service needs from the same settings.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::AwsError;
use crate::endpoints::{AwsService, resolve_endpoint};
use crate::settings::AwsSettings;

/// The AWS clients of a service. Clients are cheap to clone and share one connection pool
/// per service.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub firehose: aws_sdk_firehose::Client,
    /// Endpoint each client talks to, for messages ("kinesis at http://127.0.0.1:4567").
    pub endpoints: Endpoints,
}

#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub kinesis: Option<String>,
    pub dynamodb: Option<String>,
    pub s3: Option<String>,
    pub firehose: Option<String>,
}

impl Endpoints {
    /// "kinesis at http://…" or "kinesis (AWS us-east-1)".
    pub fn describe(&self, service: AwsService, region: &str) -> String {
        let url = match service {
            AwsService::Kinesis => &self.kinesis,
            AwsService::DynamoDb => &self.dynamodb,
            AwsService::S3 => &self.s3,
            AwsService::Firehose => &self.firehose,
        };
        match url {
            Some(u) => format!("{} at {u}", service.name()),
            None => format!("{} (AWS {region})", service.name()),
        }
    }
}

impl AwsClients {
    /// Loads credentials and region from the standard AWS chain and builds the clients.
    pub async fn load(settings: &AwsSettings) -> Result<Self, AwsError> {
        let sdk = sdk_config(settings).await?;
        let endpoints = Endpoints {
            kinesis: resolve_endpoint(settings, AwsService::Kinesis),
            dynamodb: resolve_endpoint(settings, AwsService::DynamoDb),
            s3: resolve_endpoint(settings, AwsService::S3),
            firehose: resolve_endpoint(settings, AwsService::Firehose),
        };
        Ok(Self::with_endpoints(
            &sdk,
            endpoints,
            settings.s3_force_path_style,
        ))
    }

    /// Clients for exactly these endpoints (`None`: AWS itself), ignoring the environment's
    /// endpoint variables. Path-style S3 defaults to on when S3's endpoint is overridden.
    pub fn with_endpoints(
        sdk: &SdkConfig,
        endpoints: Endpoints,
        s3_path_style: Option<bool>,
    ) -> Self {
        let mut kinesis = aws_sdk_kinesis::config::Builder::from(sdk);
        if let Some(url) = &endpoints.kinesis {
            kinesis = kinesis.endpoint_url(url);
        }
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(url) = &endpoints.dynamodb {
            dynamodb = dynamodb.endpoint_url(url);
        }
        let mut firehose = aws_sdk_firehose::config::Builder::from(sdk);
        if let Some(url) = &endpoints.firehose {
            firehose = firehose.endpoint_url(url);
        }
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
        if let Some(url) = &endpoints.s3 {
            s3 = s3.endpoint_url(url);
        }
        s3 = s3.force_path_style(s3_path_style.unwrap_or(endpoints.s3.is_some()));
        Self {
            kinesis: aws_sdk_kinesis::Client::from_conf(kinesis.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            firehose: aws_sdk_firehose::Client::from_conf(firehose.build()),
            endpoints,
        }
    }

    /// The region the clients use.
    pub fn region(&self) -> String {
        self.kinesis
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }
}

/// The shared SDK configuration: region, credentials chain, timeouts, retries.
pub async fn sdk_config(settings: &AwsSettings) -> Result<SdkConfig, AwsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
    let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
    if !env_region && let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(AwsError::NoRegion);
    }
    Ok(sdk)
}
