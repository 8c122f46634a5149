//! The provider webhook: verify the signature, deduplicate by event id, and record the payment state the
//! event reports (a report older than the stored one is ignored, so reordered deliveries are harmless). An
//! event only reports on the payment our own authorization bound the order to: one naming another payment
//! id is ignored, and one dated beyond the tolerance in the future is refused (it would outrank every
//! later report).

use crate::ports::{PaymentLedger, WebhookReader};
use chrono::{DateTime, Utc};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::payment::WEBHOOK_TOLERANCE_SECS;
use serde::Serialize;

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// The payment state was recorded.
    Recorded,
    /// A redelivery of an event already handled.
    Duplicate,
    /// A verified event that does not concern an order's payment, or names a payment the order is not
    /// bound to (logged; nothing changes).
    Ignored,
}

/// Handles one delivery. A bad signature is 400 (the provider stops retrying); a storage failure is an
/// error (the provider retries, and the event is not yet claimed).
#[tracing::instrument(skip_all)]
pub async fn handle_webhook(
    ledger: &impl PaymentLedger,
    webhooks: &impl WebhookReader,
    signature: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookOutcome> {
    let signature = signature.unwrap_or_default();
    let event = webhooks.read(signature, payload, now)?;
    if (event.created - now).num_seconds() > WEBHOOK_TOLERANCE_SECS {
        return Err(DomainError::invalid_parameter("created", "is further in the future than the tolerance"));
    }
    let Some(payment) = &event.payment else {
        tracing::info!(event_id = %event.id, kind = %event.kind, "webhook ignored");
        return Ok(WebhookOutcome::Ignored);
    };
    let ours = ledger.payment_for_order(&payment.order_id).await?.map(|p| p.payment_id);
    if ours.as_deref() != Some(payment.payment_id.as_str()) {
        tracing::warn!(
            event_id = %event.id, order_id = %payment.order_id, reported = %payment.payment_id,
            ours = ours.as_deref().unwrap_or("none"), "webhook names a payment the order is not bound to: ignored"
        );
        return Ok(WebhookOutcome::Ignored);
    }
    // The provider dates events to the second and our own writes to the millisecond: an event is taken as seen
    // at the end of its second, so one sent in the same second as our last write is not dropped as stale.
    let seen = event.created + chrono::Duration::milliseconds(999);
    ledger.record_payment_report(payment, seen).await?;
    if !ledger.claim_once(&format!("webhook-{}", event.id)).await? {
        tracing::info!(event_id = %event.id, "webhook redelivered");
        return Ok(WebhookOutcome::Duplicate);
    }
    tracing::info!(event_id = %event.id, kind = %event.kind, order_id = %payment.order_id, "webhook recorded");
    Ok(WebhookOutcome::Recorded)
}
