//! A configuration value out of its bounds. The values are read from the environment at the edge (the Lambda
//! crate); the domain only says which values are valid.

/// A missing or unparsable configuration variable. Fatal at init: the function cannot start without it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: &'static str, reason: String },
}
