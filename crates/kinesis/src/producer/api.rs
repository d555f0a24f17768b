//! The narrow slice of the Kinesis API the producer uses, so tests can substitute a fake.

use async_trait::async_trait;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;

use crate::error::{ApiError, FailureReason};
use crate::shards::{ShardInfo, ShardMap};

/// One PutRecords entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
}

impl PutEntry {
    /// Size Kinesis counts against its limits: data plus partition key.
    pub fn size(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }
}

/// Where a successful entry landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutAck {
    pub shard_id: String,
    pub sequence_number: String,
}

/// PutRecords. Returns one outcome per entry, in order, or an error for the whole call.
#[async_trait]
pub trait PutRecordsApi: Send + Sync + 'static {
    async fn put_records(
        &self,
        stream: &str,
        entries: &[PutEntry],
    ) -> Result<Vec<Result<PutAck, ApiError>>, ApiError>;
}

/// ListShards, reduced to the open shards of a stream.
#[async_trait]
pub trait ListShardsApi: Send + Sync + 'static {
    async fn list_open_shards(&self, stream: &str) -> crate::Result<ShardMap>;
}

/// Classifies an SDK error. Retrying is the producer's job: the client it calls through has SDK
/// retries disabled, so every failure reaches this function.
pub fn classify_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) => ApiError::new(FailureReason::Timeout, "Timeout", message),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            ApiError::new(FailureReason::Timeout, "Timeout", message)
        }
        SdkError::DispatchFailure(_) => {
            ApiError::new(FailureReason::Transport, "DispatchFailure", message)
        }
        SdkError::ResponseError(_) => {
            ApiError::new(FailureReason::Transport, "ResponseError", message)
        }
        SdkError::ConstructionFailure(_) => {
            ApiError::new(FailureReason::Invalid, "ConstructionFailure", message)
        }
        SdkError::ServiceError(e) => {
            let status = Some(e.raw().status().as_u16());
            let code = err.code().unwrap_or("Unknown");
            ApiError::from_code(code, err.message().unwrap_or(&message).to_owned(), status)
        }
        _ => ApiError::new(FailureReason::Unknown, "Unknown", message),
    }
}

fn is_arn(stream: &str) -> bool {
    stream.starts_with("arn:")
}

#[async_trait]
impl PutRecordsApi for aws_sdk_kinesis::Client {
    async fn put_records(
        &self,
        stream: &str,
        entries: &[PutEntry],
    ) -> Result<Vec<Result<PutAck, ApiError>>, ApiError> {
        let records = entries
            .iter()
            .map(|e| {
                PutRecordsRequestEntry::builder()
                    .partition_key(e.partition_key.clone())
                    .set_explicit_hash_key(e.explicit_hash_key.clone())
                    .data(Blob::new(e.data.to_vec()))
                    .build()
                    .map_err(|err| {
                        ApiError::new(FailureReason::Invalid, "InvalidEntry", err.to_string())
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut req = self.put_records().set_records(Some(records));
        req = if is_arn(stream) {
            req.stream_arn(stream)
        } else {
            req.stream_name(stream)
        };
        let out = req.send().await.map_err(|e| classify_sdk_error(&e))?;
        Ok(out
            .records()
            .iter()
            .map(
                |r| match (r.error_code(), r.shard_id(), r.sequence_number()) {
                    (None, Some(shard), Some(seq)) => Ok(PutAck {
                        shard_id: shard.to_owned(),
                        sequence_number: seq.to_owned(),
                    }),
                    (Some(code), _, _) => Err(ApiError::from_code(
                        code,
                        r.error_message().unwrap_or_default(),
                        None,
                    )),
                    _ => Err(ApiError::new(
                        FailureReason::Transport,
                        "IncompleteResponse",
                        "PutRecords entry without error code, shard id or sequence number",
                    )),
                },
            )
            .collect())
    }
}

#[async_trait]
impl ListShardsApi for aws_sdk_kinesis::Client {
    async fn list_open_shards(&self, stream: &str) -> crate::Result<ShardMap> {
        let mut open = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            // With a NextToken the stream must not be named again.
            let req = match &next_token {
                Some(token) => self.list_shards().next_token(token),
                None if is_arn(stream) => self.list_shards().stream_arn(stream),
                None => self.list_shards().stream_name(stream),
            };
            let out = req.send().await.map_err(|e| classify_sdk_error(&e))?;
            for shard in out.shards() {
                open.extend(ShardInfo::open_from_sdk(shard)?);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => break,
            }
        }
        ShardMap::new(open)
    }
}

/// A client like `client` but with SDK retries disabled, so the producer is the only retry layer.
pub fn without_sdk_retries(client: &aws_sdk_kinesis::Client) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build(),
    )
}
