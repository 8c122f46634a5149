//! Typed domain errors. Every use case returns these; `api` maps them to HTTP, Step Functions tasks map them
//! to stable `errorType` names.

use crate::money::{Money, MoneyError};
use std::fmt;

/// The registry of stable error codes: every `error.code` the API answers with, spelled once. The HTTP mapping
/// takes the code from here (`DomainError::code`), and a test holds docs/openapi.yaml's `Error.code` enum to
/// exactly this list.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the registry's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the API spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    /// 422: a value breaks a rule (`field` names it).
    ValidationFailed = "validation_failed",
    /// 400: a parameter or header is malformed (`field` names it).
    InvalidParameter = "invalid_parameter",
    /// 400: the body is not JSON of the expected shape.
    MalformedJson = "malformed_json",
    /// 401.
    Unauthenticated = "unauthenticated",
    /// 403.
    Forbidden = "forbidden",
    /// 404: absent, or not the caller's to know of.
    NotFound = "not_found",
    /// 409: the total differs from the one the client expected (`expected`, `actual`).
    PriceChanged = "price_changed",
    /// 409: not enough stock (`sku`).
    OutOfStock = "out_of_stock",
    /// 422: the payment provider declined.
    PaymentDeclined = "payment_declined",
    /// 429, with Retry-After.
    RateLimited = "rate_limited",
    /// 503: a dependency is busy or down; retry.
    Unavailable = "unavailable",
    /// 500: never with details.
    Internal = "internal",
    /// 422: an Idempotency-Key used with a different request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// 409: a request with the Idempotency-Key is still running.
    IdempotencyInProgress = "idempotency_in_progress",
    /// 422: a bundle names another seller's SKU as a component.
    ComponentNotOwned = "component_not_owned",
    AlreadyDelivered = "already_delivered",
    /// 409: the shopper already reported this review.
    AlreadyReported = "already_reported",
    AlreadyReturned = "already_returned",
    AlreadyShipped = "already_shipped",
    /// 409: the shopper already marked this review helpful.
    AlreadyVoted = "already_voted",
    CartBusy = "cart_busy",
    CartExists = "cart_exists",
    CartMerged = "cart_merged",
    CategoryExists = "category_exists",
    CategoryNotEmpty = "category_not_empty",
    CompensationUnclaimed = "compensation_unclaimed",
    ConcurrentUpdate = "concurrent_update",
    CurrencyMismatch = "currency_mismatch",
    HoldConsumed = "hold_consumed",
    HoldExpired = "hold_expired",
    HoldNotConsumed = "hold_not_consumed",
    IllegalTransition = "illegal_transition",
    /// 403: only a customer with a delivered order line of the product may review it (unless the shop allows
    /// unverified reviews).
    NotAVerifiedBuyer = "not_a_verified_buyer",
    /// 422: a seller's part of the cart cannot ship to the address (`field` is the country; the message names
    /// the seller).
    NotShippable = "not_shippable",
    NotSold = "not_sold",
    NotStarted = "not_started",
    NotWon = "not_won",
    PaymentIntentUnexpectedState = "payment_intent_unexpected_state",
    PaymentNotCapturable = "payment_not_capturable",
    PaymentNotVoidable = "payment_not_voidable",
    PerCustomerLimitReached = "per_customer_limit_reached",
    ProductExists = "product_exists",
    /// 409: a promotion code is taken by another promotion.
    PromotionCodeTaken = "promotion_code_taken",
    /// 409: the promotion has ended.
    PromotionExpired = "promotion_expired",
    /// 409: the promotion's conditions are not met, nothing is eligible, it would discount nothing, or no
    /// promotion has the code given at checkout.
    PromotionNotApplicable = "promotion_not_applicable",
    /// 409 (and a checkout's `failure_reason` when it loses the race for the last use): not started, switched
    /// off, used up, the customer's limit reached, a single-use code taken, or sign-in required.
    PromotionUnavailable = "promotion_unavailable",
    /// 409: the quote's cart, address, rates or tax tables changed since it was made, or it expired; quote again.
    QuoteStale = "quote_stale",
    /// 409: the seller already replied to this review.
    ReplyExists = "reply_exists",
    ReservationCommitted = "reservation_committed",
    ReservationExpired = "reservation_expired",
    ReservationIdReused = "reservation_id_reused",
    ReservationReleased = "reservation_released",
    /// 409: the customer already reviewed this product (edit it with PATCH).
    ReviewExists = "review_exists",
    SaleEnded = "sale_ended",
    SaleExists = "sale_exists",
    SaleReconciled = "sale_reconciled",
    ShipmentInProgress = "shipment_in_progress",
    ShippingMethodOverlap = "shipping_method_overlap",
    SkuTaken = "sku_taken",
    SkuUnavailable = "sku_unavailable",
    SoldOut = "sold_out",
    StockReserved = "stock_reserved",
    VersionConflict = "version_conflict",
    WarehouseExists = "warehouse_exists",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What can go wrong in a use case, independent of transport.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is well-formed but a value breaks a rule (HTTP 422).
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    /// A value names something the caller may not use, e.g. another seller's SKU (HTTP 422). `code` is the
    /// stable error code, `field` the offending value's path.
    #[error("{field}: {reason}")]
    Refused { code: ErrorCode, field: String, reason: String },
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
    /// The caller is known but may not do this, for a reason with its own stable code (HTTP 403), e.g.
    /// `not_a_verified_buyer`.
    #[error("{message}")]
    Denied { code: ErrorCode, message: String },
    /// The resource does not exist, or the caller may not know it exists (HTTP 404).
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The request conflicts with the current state (HTTP 409). `code` is the stable error code.
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
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
    Gone { code: ErrorCode, message: String },
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

    pub fn refused(code: ErrorCode, field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Refused { code, field: field.into(), reason: reason.to_string() }
    }

    pub fn invalid_parameter(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::InvalidParameter { field: field.into(), reason: reason.to_string() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn denied(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Denied { code, message: message.into() }
    }

    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn unexpected(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(source.into())
    }

    /// The stable `error.code` the API answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::ValidationFailed,
            Self::Refused { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::Denied { code, .. } => *code,
            Self::InvalidParameter { .. } => ErrorCode::InvalidParameter,
            Self::MalformedBody(_) => ErrorCode::MalformedJson,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::PriceChanged { .. } => ErrorCode::PriceChanged,
            Self::OutOfStock { .. } => ErrorCode::OutOfStock,
            Self::PaymentDeclined { .. } => ErrorCode::PaymentDeclined,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Transient(_) => ErrorCode::Unavailable,
            Self::Unexpected(_) => ErrorCode::Internal,
        }
    }

    /// The stable name a Step Functions Retry/Catch matches on.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::OutOfStock { .. } => "OutOfStock",
            Self::Conflict { code: ErrorCode::PromotionUnavailable, .. } => "PromotionUnavailable",
            Self::PaymentDeclined { .. } => "PaymentDeclined",
            Self::Transient(_) => "Transient",
            Self::NotFound { .. } => "NotFound",
            Self::Conflict { .. } | Self::PriceChanged { .. } => "Conflict",
            Self::Gone { .. } => "Gone",
            Self::Validation { .. } | Self::Refused { .. } | Self::InvalidParameter { .. } | Self::MalformedBody(_) => {
                "Validation"
            }
            Self::Unauthenticated | Self::Forbidden(_) | Self::Denied { .. } => "Forbidden",
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
