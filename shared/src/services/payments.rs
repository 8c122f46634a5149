//! The provider webhook: verify the signature, deduplicate by event id, and record the payment state the
//! event reports (a report older than the stored one is ignored, so reordered deliveries are harmless). An
//! event only reports on the payment our own authorization bound the order to: one naming another payment
//! id is ignored, and one dated beyond the tolerance in the future is refused (it would outrank every
//! later report).

use crate::adapters::payments::stripe::{parse_event, verify_signature, SIGNATURE_TOLERANCE_SECS};
use crate::error::{DomainError, Result};
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
    /// A verified event that does not concern an order's payment, or names a payment the order is not
    /// bound to (logged; nothing changes).
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
    if (event.created - now).num_seconds() > SIGNATURE_TOLERANCE_SECS {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::orders::memory::InMemoryOrders;
    use crate::adapters::payments::stripe::sign;
    use crate::domain::money::{Currency, Money};
    use crate::domain::payment::{Payment, PaymentStatus};

    const SECRET: &str = "whsec_test";

    fn canceled_event(payment_id: &str, order_id: &str, created: i64) -> String {
        serde_json::json!({
            "id": format!("evt_{payment_id}_{created}"), "type": "payment_intent.canceled", "created": created,
            "data": {"object": {"id": payment_id, "status": "canceled", "amount": 1000, "amount_received": 0,
                                "currency": "usd", "metadata": {"order_id": order_id}}}
        })
        .to_string()
    }

    async fn authorized(ledger: &InMemoryOrders, payment_id: &str, order_id: &str, at: DateTime<Utc>) {
        let payment = Payment::authorized(payment_id.into(), order_id.into(), Money::new(1000, Currency::USD));
        ledger.record_payment(&payment, at).await.unwrap();
    }

    async fn deliver(
        ledger: &InMemoryOrders,
        payload: &str,
        signed_at: i64,
        now: DateTime<Utc>,
    ) -> Result<WebhookOutcome> {
        let signature = sign(payload.as_bytes(), SECRET, signed_at);
        handle_webhook(ledger, SECRET, Some(&signature), payload.as_bytes(), now).await
    }

    #[tokio::test]
    async fn when_event_names_the_orders_payment_should_record_its_state() {
        let ledger = InMemoryOrders::new();
        let now = Utc::now();
        authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
        let outcome =
            deliver(&ledger, &canceled_event("pi_ours", "ord_1", now.timestamp()), now.timestamp(), now).await;
        assert_eq!(outcome.unwrap(), WebhookOutcome::Recorded);
        assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Voided);
    }

    #[tokio::test]
    async fn when_event_names_another_payment_than_the_orders_should_ignore_it_and_keep_ours() {
        let ledger = InMemoryOrders::new();
        let now = Utc::now();
        authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
        let outcome =
            deliver(&ledger, &canceled_event("pi_other", "ord_1", now.timestamp()), now.timestamp(), now).await;
        assert_eq!(outcome.unwrap(), WebhookOutcome::Ignored);
        let stored = ledger.payment_for_order("ord_1").await.unwrap().unwrap();
        assert_eq!((stored.payment_id.as_str(), stored.status), ("pi_ours", PaymentStatus::Authorized));
    }

    #[tokio::test]
    async fn when_order_has_no_payment_of_ours_should_ignore_the_event_and_store_nothing() {
        let ledger = InMemoryOrders::new();
        let now = Utc::now();
        let outcome =
            deliver(&ledger, &canceled_event("pi_other", "ord_1", now.timestamp()), now.timestamp(), now).await;
        assert_eq!(outcome.unwrap(), WebhookOutcome::Ignored);
        assert_eq!(ledger.payment_for_order("ord_1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn when_event_created_beyond_the_tolerance_in_the_future_should_refuse_it() {
        let ledger = InMemoryOrders::new();
        let now = Utc::now();
        authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
        let future = now.timestamp() + SIGNATURE_TOLERANCE_SECS + 60;
        let err =
            deliver(&ledger, &canceled_event("pi_ours", "ord_1", future), now.timestamp(), now).await.unwrap_err();
        assert!(matches!(&err, DomainError::InvalidParameter { field, .. } if field == "created"), "{err:?}");
        assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Authorized);
    }

    #[tokio::test]
    async fn when_signed_beyond_the_tolerance_in_the_future_or_past_should_refuse_it() {
        let ledger = InMemoryOrders::new();
        let now = Utc::now();
        authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
        let payload = canceled_event("pi_ours", "ord_1", now.timestamp());
        for signed_at in
            [now.timestamp() + SIGNATURE_TOLERANCE_SECS + 60, now.timestamp() - SIGNATURE_TOLERANCE_SECS - 60]
        {
            let err = deliver(&ledger, &payload, signed_at, now).await.unwrap_err();
            assert!(
                matches!(&err, DomainError::InvalidParameter { field, .. } if field == "Stripe-Signature"),
                "{err:?}"
            );
        }
        assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Authorized);
    }
}
