//! AWS clients for Flowline services, built from one [`AwsSettings`] and the standard AWS
//! environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KINESIS`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_FIREHOSE`), plus
//! cheap probes that tell whether each dependency answers.

mod clients;
pub use clients::{Endpoints, sdk_config};
mod endpoints;
mod probe;
mod settings;
mod watch;

pub use clients::AwsClients;
pub use endpoints::{AwsService, resolve_endpoint};
pub use probe::{
    error_chain, probe_dynamodb, probe_firehose, probe_kinesis, probe_s3, probe_s3_bucket,
};
pub use settings::{AwsSettings, ServiceEndpoints};
pub use watch::{PROBE_INTERVAL, watch_dependencies};

/// Errors building AWS clients.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "aws.region: no AWS region is configured; set AWS_REGION or aws.region (for the local stack: us-east-1)"
    )]
    NoRegion,
}
