//! Reading the adapters' configuration from the environment once, at cold start. Names are the SCREAMING_SNAKE
//! variables template.yaml sets per function; the local stack sets the same ones.

pub use commerce_domain::config::ConfigError;

/// A required variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name))
}

/// An optional variable with a parsed default.
pub fn parsed_or<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.is_empty() => {
            raw.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() })
        }
        _ => Ok(default),
    }
}

/// The shared AWS SDK configuration. Honors AWS_ENDPOINT_URL, which the local stack sets.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A secret's value from Secrets Manager, read once at cold start: `arn_name` is the variable holding the
/// secret's ARN (template.yaml gives `!Ref <Secret>` and allows `secretsmanager:GetSecretValue` on exactly
/// that secret). The caller keeps the value for the life of the execution environment.
pub async fn secret(aws: &aws_config::SdkConfig, arn_name: &'static str) -> Result<String, ConfigError> {
    let arn = required(arn_name)?;
    let invalid = |reason: String| ConfigError::Invalid { name: arn_name, reason };
    let out =
        aws_sdk_secretsmanager::Client::new(aws).get_secret_value().secret_id(&arn).send().await.map_err(|e| {
            invalid(format!("reading secret {arn}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))
        })?;
    out.secret_string.filter(|s| !s.is_empty()).ok_or_else(|| invalid(format!("secret {arn} has no string value")))
}
