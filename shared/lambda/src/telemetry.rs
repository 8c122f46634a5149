//! Structured logging. JSON when the Lambda log format says so (template.yaml sets `LogFormat: JSON`).

/// Installs the tracing subscriber once per cold start. Honors AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
