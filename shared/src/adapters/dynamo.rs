//! Helpers shared by the DynamoDB adapters: SDK error classification.

use crate::error::DomainError;
use aws_sdk_dynamodb::error::SdkError;

/// Maps an SDK failure that is not a domain outcome: throttling and timeouts are transient, the rest
/// unexpected. Call sites handle ConditionalCheckFailed and TransactionCanceled themselves, as outcomes.
pub fn sdk_error<E, R>(err: SdkError<E, R>) -> DomainError
where
    E: std::error::Error + Send + Sync + 'static + aws_sdk_dynamodb::error::ProvideErrorMetadata,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionConflictException"
            )
        ),
        _ => false,
    };
    if transient {
        DomainError::Transient(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string())
    } else {
        DomainError::unexpected(err)
    }
}
