//! The carriers' webhook side: deliveries signed with one shared secret, in the scheme payments use
//! (`Carrier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, five minutes of tolerance).

use crate::payments::stripe::{verify_signed, SIGNATURE_TOLERANCE_SECS};
use chrono::{DateTime, Utc};
use commerce_domain::error::Result;

/// The header carriers sign with.
pub const SIGNATURE_HEADER: &str = "carrier-signature";

#[derive(Clone)]
pub struct CarrierWebhooks {
    secret: String,
}

impl CarrierWebhooks {
    pub fn new(secret: impl Into<String>) -> Self {
        Self { secret: secret.into() }
    }
}

impl std::fmt::Debug for CarrierWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierWebhooks").finish_non_exhaustive()
    }
}

impl commerce_app::ports::CarrierSignature for CarrierWebhooks {
    fn verify(&self, signature: &str, payload: &[u8], now: DateTime<Utc>) -> Result<()> {
        verify_signed("Carrier-Signature", signature, payload, &self.secret, now.timestamp(), SIGNATURE_TOLERANCE_SECS)
    }
}
