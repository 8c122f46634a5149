//! Typed domain errors. Every use case returns these; `api` maps them to HTTP, Step Functions tasks map them
//! to stable `errorType` names.

use crate::money::{Money, MoneyError};
use std::fmt;

/// What can go wrong in a use case, independent of transport.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is well-formed but a value breaks a rule (HTTP 422).
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    /// A value names something the caller may not use, e.g. another seller's SKU (HTTP 422). `code` is the
    /// stable error code, `field` the offending value's path.
    #[error("{field}: {reason}")]
    Refused { code: &'static str, field: String, reason: String },
    /// A request parameter is malformed: unparsable number, unknown enum value, over a maximum (HTTP 400).
    #[error("{field}: {reason}")]
    InvalidParameter { field: String, reason: String },
    /// The request body is not valid JSON for the expected shape (HTTP 400, code `malformed_json`).
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The caller is not signed in or the credentials are not valid (HTTP 401).
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but may not do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist, or the caller may not know it exists (HTTP 404).
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The request conflicts with the current state (HTTP 409). `code` is the stable error code.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The total the client expected differs from the server's (HTTP 409, code `price_changed`, with both
    /// amounts): nothing is reserved or charged.
    #[error("the total is {actual}, not the {expected} expected")]
    PriceChanged { expected: Money, actual: Money },
    /// Not enough stock to satisfy a request (HTTP 409, code `out_of_stock`).
    #[error("out of stock: {sku}")]
    OutOfStock { sku: String },
    /// The payment provider declined (HTTP 402-like; mapped to 422 `payment_declined`).
    #[error("payment declined: {reason}")]
    PaymentDeclined { reason: String },
    /// The resource existed but is gone for good (HTTP 410), e.g. a sold-out flash sale.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// Too many requests (HTTP 429).
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency is unavailable or throttling; retrying later may succeed (HTTP 503, `Transient` in sagas).
    #[error("temporarily unavailable: {0}")]
    Transient(String),
    /// Anything else. The source goes to the log, never to the caller (HTTP 500).
    #[error("unexpected error")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    pub fn validation(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Validation { field: field.into(), reason: reason.to_string() }
    }

    pub fn refused(code: &'static str, field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Refused { code, field: field.into(), reason: reason.to_string() }
    }

    pub fn invalid_parameter(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::InvalidParameter { field: field.into(), reason: reason.to_string() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn unexpected(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(source.into())
    }

    /// The stable name a Step Functions Retry/Catch matches on.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::OutOfStock { .. } => "OutOfStock",
            Self::PaymentDeclined { .. } => "PaymentDeclined",
            Self::Transient(_) => "Transient",
            Self::NotFound { .. } => "NotFound",
            Self::Conflict { .. } | Self::PriceChanged { .. } => "Conflict",
            Self::Gone { .. } => "Gone",
            Self::Validation { .. } | Self::Refused { .. } | Self::InvalidParameter { .. } | Self::MalformedBody(_) => {
                "Validation"
            }
            Self::Unauthenticated | Self::Forbidden(_) => "Forbidden",
            Self::RateLimited { .. } => "Transient",
            Self::Unexpected(_) => "Unexpected",
        }
    }
}

impl From<MoneyError> for DomainError {
    fn from(err: MoneyError) -> Self {
        Self::Validation { field: err.field, reason: err.reason }
    }
}

/// Shorthand for use-case results.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
