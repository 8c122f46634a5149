//! Reading typed configuration from the environment once, at cold start. Names are the SCREAMING_SNAKE
//! variables template.yaml sets per function; the local stack sets the same ones. The domain says which values
//! are valid (`CartLimits::new` ...); this module reads them.

use chrono::Duration;
use commerce_app::services::flash_sale::{EntryPolicy, SalePolicy};
use commerce_domain::cart::{CartHolds, CartLimits};
use commerce_domain::inventory::reservation::ReservationPolicy;

pub use commerce_aws::config::{aws, parsed_or, required, secret, ConfigError};

/// A setting read from the environment with its documented defaults.
pub trait FromEnv: Sized {
    fn from_env() -> Result<Self, ConfigError>;
}

impl FromEnv for CartLimits {
    /// CART_MAX_QUANTITY_PER_SKU (default 10) and CART_MAX_LINES (default 50), within the bounds of `new`.
    fn from_env() -> Result<Self, ConfigError> {
        Self::new(parsed_or("CART_MAX_QUANTITY_PER_SKU", 10)?, parsed_or("CART_MAX_LINES", 50)?)
    }
}

impl FromEnv for CartHolds {
    /// CART_RESERVE_ON_ADD (`true`/`false`, default false) and the reservation policy's hold times.
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self { enabled: parsed_or("CART_RESERVE_ON_ADD", false)?, policy: ReservationPolicy::from_env()? })
    }
}

impl FromEnv for ReservationPolicy {
    /// RESERVATION_TTL_GUEST_SECONDS and RESERVATION_TTL_SHOPPER_SECONDS (default 900 each).
    fn from_env() -> Result<Self, ConfigError> {
        let guest: i64 = parsed_or("RESERVATION_TTL_GUEST_SECONDS", 900)?;
        let shopper: i64 = parsed_or("RESERVATION_TTL_SHOPPER_SECONDS", 900)?;
        Ok(Self { guest_ttl: Duration::seconds(guest), shopper_ttl: Duration::seconds(shopper) })
    }
}

impl FromEnv for commerce_domain::review::ReviewSettings {
    /// REVIEWS_AUTO_APPROVE and REVIEWS_ALLOW_UNVERIFIED (`true`/`false`, default false each) and
    /// REVIEWS_REPORT_THRESHOLD (default 3, at least 1).
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            auto_approve: parsed_or("REVIEWS_AUTO_APPROVE", false)?,
            allow_unverified: parsed_or("REVIEWS_ALLOW_UNVERIFIED", false)?,
            report_threshold: parsed_or::<u32>("REVIEWS_REPORT_THRESHOLD", 3)?.max(1),
        })
    }
}

impl FromEnv for EntryPolicy {
    /// FLASH_ENTRY_MIN_INTERVAL_MS (default 1000).
    fn from_env() -> Result<Self, ConfigError> {
        let ms: i64 = parsed_or("FLASH_ENTRY_MIN_INTERVAL_MS", 1000)?;
        Ok(Self { min_interval: Duration::milliseconds(ms.max(0)) })
    }
}

impl FromEnv for SalePolicy {
    /// FLASH_MAX_LANES (default 160, at least 1): the admission worker's MaximumConcurrency;
    /// FLASH_GATE_COPIES (default 1): the items holding a new sale's gate.
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self { max_lanes: parsed_or::<u32>("FLASH_MAX_LANES", 160)?.max(1), gate_copies: gate_copies()? })
    }
}

/// FLASH_GATE_COPIES (default 1, within 1..=16): the items holding a sale's gate. The function that creates
/// sales writes that many; the entry, status and admission functions read one of them each.
pub fn gate_copies() -> Result<u32, ConfigError> {
    Ok(parsed_or::<u32>("FLASH_GATE_COPIES", 1)?.clamp(1, commerce_domain::flash_sale::MAX_GATE_COPIES))
}
