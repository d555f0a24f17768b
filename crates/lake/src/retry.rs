//! The one retry layer: backoff from [`RetryConfig`], per-attempt timeouts, and the
//! classification of AWS SDK errors into retriable and not.

use std::future::Future;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use backon::ExponentialBuilder;

use crate::config::RetryConfig;
use crate::error::LakeError;

/// Error codes worth retrying even when the HTTP status alone would not say so.
const RETRIABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Backoff: `initial_backoff` doubling up to `max_backoff`, each delay plus a random
/// jitter of up to itself, `max_attempts - 1` retries.
pub(crate) fn backoff(cfg: &RetryConfig) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(cfg.initial_backoff)
        .with_max_delay(cfg.max_backoff)
        .with_max_times(cfg.max_attempts.saturating_sub(1) as usize)
        .with_jitter()
}

/// Runs one attempt under the attempt timeout; a timeout is retriable.
pub(crate) async fn attempt<T>(
    cfg: &RetryConfig,
    operation: &'static str,
    fut: impl Future<Output = Result<T, LakeError>>,
) -> Result<T, LakeError> {
    match tokio::time::timeout(cfg.attempt_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(LakeError::Aws {
            operation,
            code: "Timeout".into(),
            message: format!("no answer within {:?}", cfg.attempt_timeout),
            retriable: true,
        }),
    }
}

/// An SDK error as a [`LakeError`]: timeouts, connection failures, truncated responses,
/// 5xx, 429 and throttling codes are retriable; other service errors (AccessDenied,
/// NoSuchBucket, validation) and request construction failures are not.
pub(crate) fn classify<E, R>(operation: &'static str, err: SdkError<E, R>) -> LakeError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let (code, retriable) = match &err {
        SdkError::TimeoutError(_) => ("Timeout".to_string(), true),
        SdkError::DispatchFailure(_) => ("DispatchFailure".to_string(), true),
        SdkError::ResponseError(_) => ("ResponseError".to_string(), true),
        SdkError::ServiceError(s) => {
            let status = s.raw().status_code();
            let code = s.err().code().unwrap_or("").to_string();
            let retriable =
                status >= 500 || status == 429 || RETRIABLE_CODES.contains(&code.as_str());
            (
                if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    code
                },
                retriable,
            )
        }
        _ => ("ConstructionFailure".to_string(), false),
    };
    LakeError::Aws {
        operation,
        code,
        message: DisplayErrorContext(&err).to_string(),
        retriable,
    }
}

/// The status code of a raw response (a trait so tests could fake responses).
pub(crate) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(status: u16, code: &str) -> LakeError {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let err = PutObjectError::generic(meta);
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        classify("PutObject", SdkError::service_error(err, raw))
    }

    #[test]
    fn classification() {
        assert!(service_error(503, "SlowDown").is_retriable());
        assert!(service_error(500, "InternalError").is_retriable());
        assert!(service_error(400, "RequestTimeout").is_retriable());
        assert!(service_error(429, "").is_retriable());
        assert!(!service_error(403, "AccessDenied").is_retriable());
        assert!(!service_error(404, "NoSuchBucket").is_retriable());
        let e = service_error(404, "NoSuchBucket");
        assert!(e.to_string().contains("NoSuchBucket"), "{e}");
        let timeout: SdkError<PutObjectError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(classify("PutObject", timeout).is_retriable());
        let construction: SdkError<PutObjectError, HttpResponse> =
            SdkError::construction_failure("bad");
        assert!(!classify("PutObject", construction).is_retriable());
    }
}
