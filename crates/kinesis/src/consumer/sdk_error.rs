//! Classification of AWS SDK errors for the consumer.

use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::Error;
use crate::error::{ApiError, FailureReason};

/// The error code of a service error, if the call reached the service.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// A Kinesis call failure as the crate's [`ApiError`].
pub(crate) fn kinesis_error<E, R>(err: &SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("Unknown");
            let message = e.err().message().unwrap_or_default().to_owned();
            ApiError::from_code(code, message, None)
        }
        SdkError::TimeoutError(_) => {
            ApiError::new(FailureReason::Timeout, "timeout", display_chain(err))
        }
        _ => ApiError::new(FailureReason::Transport, "transport", display_chain(err)),
    }
}

/// A DynamoDB call failure as [`Error::LeaseTable`].
pub(crate) fn dynamodb_error<E, R>(op: &'static str, err: &SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let retriable = match err {
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "LimitExceededException"
                    | "TransactionConflictException"
            )
        ),
        // Timeouts, connection failures and unreadable responses.
        _ => true,
    };
    Error::LeaseTable {
        op,
        message: display_chain(err),
        retriable,
    }
}

/// The error and its sources on one line (SDK errors hide the cause in `source()`).
pub(crate) fn display_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
