//! Cheap calls that tell whether a dependency answers, for `/ready`. Each returns a
//! message that names the server, so an operator knows where to look.

use crate::AwsClients;
use crate::endpoints::AwsService;

fn failure(clients: &AwsClients, service: AwsService, e: impl std::error::Error) -> String {
    format!(
        "{} does not answer: {}",
        clients.endpoints.describe(service, &clients.region()),
        error_chain(&e)
    )
}

/// "dispatch failure: io error: tcp connect error: Connection refused": each cause once,
/// without the Debug dumps that `DisplayErrorContext` adds.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

pub async fn probe_kinesis(clients: &AwsClients) -> Result<(), String> {
    match clients.kinesis.list_streams().limit(1).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(failure(clients, AwsService::Kinesis, e)),
    }
}

pub async fn probe_dynamodb(clients: &AwsClients) -> Result<(), String> {
    match clients.dynamodb.list_tables().limit(1).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(failure(clients, AwsService::DynamoDb, e)),
    }
}

pub async fn probe_firehose(clients: &AwsClients) -> Result<(), String> {
    match clients
        .firehose
        .list_delivery_streams()
        .limit(1)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(failure(clients, AwsService::Firehose, e)),
    }
}

pub async fn probe_s3(clients: &AwsClients) -> Result<(), String> {
    match clients.s3.list_buckets().max_buckets(1).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(failure(clients, AwsService::S3, e)),
    }
}

/// Ready when the bucket exists and is reachable.
pub async fn probe_s3_bucket(clients: &AwsClients, bucket: &str) -> Result<(), String> {
    match clients.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "bucket {bucket:?}: {}",
            failure(clients, AwsService::S3, e)
        )),
    }
}
