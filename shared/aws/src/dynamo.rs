//! Helpers shared by the DynamoDB adapters: SDK error classification.

use aws_sdk_dynamodb::error::SdkError;
use commerce_domain::error::DomainError;

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

/// A conditional `UpdateItem`'s outcome: `true` when it applied, `false` when its condition failed.
pub fn update_applied<O, R>(
    result: std::result::Result<O, SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>>,
) -> commerce_domain::error::Result<bool>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(err) => Err(sdk_error(err)),
    }
}
