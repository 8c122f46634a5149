//! The provider webhook: verify the signature, deduplicate by event id, and record the payment state the
//! event reports (a report older than the stored one is ignored, so reordered deliveries are harmless).

use crate::adapters::payments::stripe::{parse_event, verify_signature, SIGNATURE_TOLERANCE_SECS};
use crate::error::Result;
use crate::ports::PaymentLedger;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// The payment state was recorded.
    Recorded,
    /// A redelivery of an event already handled.
    Duplicate,
    /// A verified event that does not concern an order's payment.
    Ignored,
}

/// Handles one delivery. A bad signature is 400 (the provider stops retrying); a storage failure is an
/// error (the provider retries, and the event is not yet claimed).
pub async fn handle_webhook(
    ledger: &impl PaymentLedger,
    secret: &str,
    signature: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookOutcome> {
    let signature = signature.unwrap_or_default();
    verify_signature(signature, payload, secret, now.timestamp(), SIGNATURE_TOLERANCE_SECS)?;
    let event = parse_event(payload)?;
    let Some(payment) = &event.payment else {
        tracing::info!(event_id = %event.id, kind = %event.kind, "webhook ignored");
        return Ok(WebhookOutcome::Ignored);
    };
    ledger.record_payment(payment, event.created).await?;
    if !ledger.claim_once(&format!("webhook-{}", event.id)).await? {
        tracing::info!(event_id = %event.id, "webhook redelivered");
        return Ok(WebhookOutcome::Duplicate);
    }
    tracing::info!(event_id = %event.id, kind = %event.kind, order_id = %payment.order_id, "webhook recorded");
    Ok(WebhookOutcome::Recorded)
}
