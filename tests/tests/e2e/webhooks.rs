//! The payment webhook through the local HTTP API, signed with the secret the stack provisioned in the
//! emulator from template.yaml (read here as the function reads it, from Secrets Manager).

use crate::checkout::{aws, placed, settled, stocked_sku, ORDERS_TABLE};
use commerce_app::ports::PaymentLedger;
use commerce_aws::orders::DynamoOrders;
use commerce_aws::payments::stripe::sign;
use commerce_domain::payment::PaymentStatus;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{stack, unique};

/// The default the template used to ship for the signing secret.
const OLD_DEFAULT: &str = "whsec_local_development_only";

async fn provisioned_secret() -> String {
    let secrets = aws_sdk_secretsmanager::Client::new(&aws().await);
    let out = secrets.get_secret_value().secret_id("commerce-local-payment-webhook-secret").send().await;
    out.expect("the stack provisioned the webhook secret").secret_string().expect("a string value").to_owned()
}

fn canceled(payment_id: &str, order_id: &str) -> String {
    json!({
        "id": unique("evt"), "type": "payment_intent.canceled", "created": chrono::Utc::now().timestamp(),
        "data": {"object": {"id": payment_id, "status": "canceled", "amount": 2500, "amount_received": 0,
                            "currency": "usd", "metadata": {"order_id": order_id}}}
    })
    .to_string()
}

async fn deliver(payload: &str, secret: &str) -> (u16, Value) {
    let s = stack();
    let signature = sign(payload.as_bytes(), secret, chrono::Utc::now().timestamp());
    let response = s
        .http()
        .post(s.url("/v1/webhooks/payments"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(payload.to_owned())
        .send()
        .await
        .expect("webhook request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_webhook_signed_with_the_provisioned_secret_is_accepted_and_one_signed_with_the_old_default_is_refused() {
    let sku = stocked_sku("WHK", 2).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_card_visa").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(30)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let payment_id = order["events"][1]["payment_id"].as_str().expect("the order names its payment").to_owned();
    let ledger = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws().await), ORDERS_TABLE.to_owned());
    let bound = ledger.payment_for_order(&order_id).await.unwrap().expect("the authorization bound the order");
    assert_eq!((bound.payment_id.as_str(), bound.status), (payment_id.as_str(), PaymentStatus::Authorized));

    let secret = provisioned_secret().await;
    assert_ne!(secret, OLD_DEFAULT);
    assert!(secret.len() >= 32, "a generated secret: {secret}");

    let (status, body) = deliver(&canceled(&payment_id, &order_id), OLD_DEFAULT).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_parameter")), "{body}");
    assert_eq!(ledger.payment_for_order(&order_id).await.unwrap().map(|p| p.status), Some(PaymentStatus::Authorized));

    let (status, body) = deliver(&canceled("pi_not_this_orders", &order_id), &secret).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")), "{body}");
    let kept = ledger.payment_for_order(&order_id).await.unwrap().expect("still bound");
    assert_eq!((kept.payment_id.as_str(), kept.status), (payment_id.as_str(), PaymentStatus::Authorized));

    let (status, body) = deliver(&canceled(&payment_id, &order_id), &secret).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("recorded")), "{body}");
    let reported = ledger.payment_for_order(&order_id).await.unwrap().expect("still bound");
    assert_eq!((reported.payment_id.as_str(), reported.status), (payment_id.as_str(), PaymentStatus::Voided));
}
