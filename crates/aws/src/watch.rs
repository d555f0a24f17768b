//! Readiness for AWS dependencies: a probe per service, run by the runtime.

use std::time::Duration;

use flowline_runtime::Context;

use crate::endpoints::AwsService;
use crate::{AwsClients, probe};

/// How often dependencies are probed for `/ready`.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

impl AwsClients {
    /// One cheap call to `service`; `Err` names the server and the reason.
    pub async fn probe(&self, service: AwsService) -> Result<(), String> {
        match service {
            AwsService::Kinesis => probe::probe_kinesis(self).await,
            AwsService::DynamoDb => probe::probe_dynamodb(self).await,
            AwsService::Firehose => probe::probe_firehose(self).await,
            AwsService::S3 => probe::probe_s3(self).await,
        }
    }
}

/// Makes each of `services` a readiness component of the service in `ctx`.
pub fn watch_dependencies<T>(ctx: &Context<T>, aws: &AwsClients, services: &[AwsService]) {
    for &service in services {
        let aws = aws.clone();
        ctx.watch_dependency(service.name(), PROBE_INTERVAL, move || {
            let aws = aws.clone();
            async move { aws.probe(service).await }
        });
    }
}
