//! Object upload: the narrow [`ObjectSink`] the writer needs, and its S3 implementation.
//!
//! Retries live here and only here: [`S3Uploader::new`] rebuilds the client it is given
//! with the SDK's retries disabled, so a call is tried at most `retry.max_attempts`
//! times in total, whatever the caller's client config says.

use std::future::Future;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::retry::RetryConfig as SdkRetryConfig;
use backon::Retryable;
use bytes::Bytes;
use tracing::{debug, warn};

use crate::config::UploadConfig;
use crate::error::LakeError;
use crate::layout::PrefixKind;
use crate::metrics::LakeMetrics;
use crate::retry::{attempt, backoff, classify};

/// Where finished objects go. Idempotent by key: putting the same key again replaces it.
pub trait ObjectSink: Send + Sync + 'static {
    fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        kind: PrefixKind,
    ) -> impl Future<Output = Result<(), LakeError>> + Send;
}

/// Uploads to one bucket: PutObject below the multipart threshold, multipart above.
#[derive(Clone, Debug)]
pub struct S3Uploader {
    client: aws_sdk_s3::Client,
    bucket: String,
    config: UploadConfig,
    metrics: LakeMetrics,
}

impl S3Uploader {
    pub fn new(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        config: UploadConfig,
        metrics: LakeMetrics,
    ) -> Self {
        let conf = client
            .config()
            .to_builder()
            .retry_config(SdkRetryConfig::disabled())
            .build();
        S3Uploader {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: bucket.to_string(),
            config,
            metrics,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Runs `op` with the configured backoff, counting retries.
    async fn with_retries<T, F, Fut>(
        &self,
        kind: PrefixKind,
        operation: &'static str,
        op: F,
    ) -> Result<T, LakeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LakeError>>,
    {
        let retry = &self.config.retry;
        let mut op = op;
        (|| attempt(retry, operation, op()))
            .retry(backoff(retry))
            .when(LakeError::is_retriable)
            .notify(|e, after| {
                self.metrics
                    .upload_retries
                    .with_label_values(&[kind.as_str()])
                    .inc();
                warn!(error = %e, ?after, "{operation} failed, retrying");
            })
            .await
    }

    async fn put_single(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        kind: PrefixKind,
    ) -> Result<(), LakeError> {
        self.with_retries(kind, "PutObject", || {
            let req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(body.clone()));
            async move {
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("PutObject", e))
            }
        })
        .await
    }

    async fn put_multipart(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        kind: PrefixKind,
    ) -> Result<(), LakeError> {
        let created = self
            .with_retries(kind, "CreateMultipartUpload", || {
                let req = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type);
                async move {
                    req.send()
                        .await
                        .map_err(|e| classify("CreateMultipartUpload", e))
                }
            })
            .await?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(LakeError::Aws {
                operation: "CreateMultipartUpload",
                code: "NoUploadId".into(),
                message: "the response has no UploadId".into(),
                retriable: false,
            });
        };
        let result = self.upload_parts(key, &upload_id, &body, kind).await;
        if result.is_err() {
            // Abort so S3 does not keep (and bill) the parts; best effort, one attempt.
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                warn!(key, error = %classify("AbortMultipartUpload", e), "abort failed; a bucket lifecycle rule must clean up");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        body: &Bytes,
        kind: PrefixKind,
    ) -> Result<(), LakeError> {
        let part_size = self.config.part_size_bytes as usize;
        let mut parts = Vec::new();
        for (i, start) in (0..body.len()).step_by(part_size).enumerate() {
            let chunk = body.slice(start..(start + part_size).min(body.len()));
            let number = i as i32 + 1;
            let out = self
                .with_retries(kind, "UploadPart", || {
                    let req = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(chunk.clone()));
                    async move { req.send().await.map_err(|e| classify("UploadPart", e)) }
                })
                .await?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.with_retries(kind, "CompleteMultipartUpload", || {
            let req = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(completed.clone());
            async move {
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("CompleteMultipartUpload", e))
            }
        })
        .await
    }
}

impl ObjectSink for S3Uploader {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        kind: PrefixKind,
    ) -> Result<(), LakeError> {
        let started = Instant::now();
        let size = body.len();
        let result = if size as u64 >= self.config.multipart_threshold_bytes {
            self.put_multipart(key, body, content_type, kind).await
        } else {
            self.put_single(key, body, content_type, kind).await
        };
        self.metrics
            .upload_timer(kind)
            .observe(started.elapsed().as_secs_f64());
        if result.is_ok() {
            debug!(bucket = %self.bucket, key, size, "uploaded");
        }
        result
    }
}
