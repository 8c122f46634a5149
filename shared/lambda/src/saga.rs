//! Step Functions tasks: a use case's error as the task's failure.

use commerce_domain::DomainError;

/// A saga step's failure as the function reports it: `errorType` is the stable name the state machine's
/// Retry and Catch match on (`OutOfStock`, `PaymentDeclined`, `Gone`, `Transient`, ...).
pub fn task_error(err: DomainError) -> lambda_runtime::Diagnostic {
    if let DomainError::Unexpected(source) = &err {
        tracing::error!(error = %source, "saga step failed unexpectedly");
    }
    lambda_runtime::Diagnostic { error_type: err.error_type().to_owned(), error_message: err.to_string() }
}
