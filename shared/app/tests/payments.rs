//! The payments use cases over the in-memory fakes.

use chrono::{DateTime, Utc};
use commerce_app::ports::PaymentLedger;
use commerce_app::services::payments::*;
use commerce_aws::payments::stripe::{sign, StripeWebhooks};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::{Currency, Money};
use commerce_domain::payment::WEBHOOK_TOLERANCE_SECS;
use commerce_domain::payment::{Payment, PaymentStatus};
use commerce_testkit::orders::InMemoryOrders;

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

async fn deliver(ledger: &InMemoryOrders, payload: &str, signed_at: i64, now: DateTime<Utc>) -> Result<WebhookOutcome> {
    let signature = sign(payload.as_bytes(), SECRET, signed_at);
    handle_webhook(ledger, &StripeWebhooks::new(SECRET), Some(&signature), payload.as_bytes(), now).await
}

#[tokio::test]
async fn when_event_names_the_orders_payment_should_record_its_state() {
    let ledger = InMemoryOrders::new();
    let now = Utc::now();
    authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
    let outcome = deliver(&ledger, &canceled_event("pi_ours", "ord_1", now.timestamp()), now.timestamp(), now).await;
    assert_eq!(outcome.unwrap(), WebhookOutcome::Recorded);
    assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Voided);
}

#[tokio::test]
async fn when_event_names_another_payment_than_the_orders_should_ignore_it_and_keep_ours() {
    let ledger = InMemoryOrders::new();
    let now = Utc::now();
    authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
    let outcome = deliver(&ledger, &canceled_event("pi_other", "ord_1", now.timestamp()), now.timestamp(), now).await;
    assert_eq!(outcome.unwrap(), WebhookOutcome::Ignored);
    let stored = ledger.payment_for_order("ord_1").await.unwrap().unwrap();
    assert_eq!((stored.payment_id.as_str(), stored.status), ("pi_ours", PaymentStatus::Authorized));
}

#[tokio::test]
async fn when_order_has_no_payment_of_ours_should_ignore_the_event_and_store_nothing() {
    let ledger = InMemoryOrders::new();
    let now = Utc::now();
    let outcome = deliver(&ledger, &canceled_event("pi_other", "ord_1", now.timestamp()), now.timestamp(), now).await;
    assert_eq!(outcome.unwrap(), WebhookOutcome::Ignored);
    assert_eq!(ledger.payment_for_order("ord_1").await.unwrap(), None);
}

#[tokio::test]
async fn when_event_created_beyond_the_tolerance_in_the_future_should_refuse_it() {
    let ledger = InMemoryOrders::new();
    let now = Utc::now();
    authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
    let future = now.timestamp() + WEBHOOK_TOLERANCE_SECS + 60;
    let err = deliver(&ledger, &canceled_event("pi_ours", "ord_1", future), now.timestamp(), now).await.unwrap_err();
    assert!(matches!(&err, DomainError::InvalidParameter { field, .. } if field == "created"), "{err:?}");
    assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Authorized);
}

#[tokio::test]
async fn when_signed_beyond_the_tolerance_in_the_future_or_past_should_refuse_it() {
    let ledger = InMemoryOrders::new();
    let now = Utc::now();
    authorized(&ledger, "pi_ours", "ord_1", now - chrono::Duration::seconds(30)).await;
    let payload = canceled_event("pi_ours", "ord_1", now.timestamp());
    for signed_at in [now.timestamp() + WEBHOOK_TOLERANCE_SECS + 60, now.timestamp() - WEBHOOK_TOLERANCE_SECS - 60] {
        let err = deliver(&ledger, &payload, signed_at, now).await.unwrap_err();
        assert!(matches!(&err, DomainError::InvalidParameter { field, .. } if field == "Stripe-Signature"), "{err:?}");
    }
    assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Authorized);
}
