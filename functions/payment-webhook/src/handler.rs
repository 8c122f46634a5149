//! Hands the raw body and the signature header to the webhook use case.

use commerce_app::ports::{PaymentLedger, WebhookReader};
use commerce_app::services::payments;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    ledger: &impl PaymentLedger,
    webhooks: &impl WebhookReader,
    req: Request,
) -> Result<Response<Body>, Error> {
    let payload = api::raw_body(&req);
    let signature = api::header(&req, "stripe-signature");
    let result = payments::handle_webhook(ledger, webhooks, signature.as_deref(), payload, chrono::Utc::now()).await;
    let body = result.map(|outcome| serde_json::json!({ "received": true, "outcome": outcome }));
    Ok(api::respond(api::StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::PaymentLedger;
    use commerce_aws::payments::stripe::{sign, StripeWebhooks};
    use commerce_domain::money::{Currency, Money};
    use commerce_domain::payment::{Payment, PaymentStatus};
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::InMemoryOrders;

    const SECRET: &str = "whsec_test";

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/payment-webhook").as_ref()) {
            let response = handle(&InMemoryOrders::new(), &StripeWebhooks::new(SECRET), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    fn delivery(payload: &str, signature: &str) -> lambda_http::Request {
        request("POST", "/v1/webhooks/payments", "/v1/webhooks/payments")
            .header("stripe-signature", signature)
            .body(payload.to_owned())
            .build()
    }

    /// A ledger whose `ord_1` is bound to `pi_1`, as the authorization step leaves it.
    async fn bound_ledger() -> InMemoryOrders {
        let ledger = InMemoryOrders::new();
        let payment = Payment::authorized("pi_1".into(), "ord_1".into(), Money::new(1000, Currency::USD));
        ledger.bind_payment(&payment, chrono::Utc::now() - chrono::Duration::seconds(60)).await.unwrap();
        ledger
    }

    fn canceled(payment_id: &str, created: i64) -> String {
        serde_json::json!({
            "id": format!("evt_{payment_id}"), "type": "payment_intent.canceled", "created": created,
            "data": {"object": {"id": payment_id, "status": "canceled", "amount": 1000, "amount_received": 0,
                                "currency": "usd", "metadata": {"order_id": "ord_1"}}}
        })
        .to_string()
    }

    #[tokio::test]
    async fn when_signed_event_arrives_twice_should_record_once_and_flag_duplicate() {
        let ledger = bound_ledger().await;
        let now = chrono::Utc::now().timestamp();
        let payload = canceled("pi_1", now);
        let signature = sign(payload.as_bytes(), SECRET, now);
        let first =
            body_json(&handle(&ledger, &StripeWebhooks::new(SECRET), delivery(&payload, &signature)).await.unwrap());
        assert_eq!(first["outcome"], "recorded");
        let second =
            body_json(&handle(&ledger, &StripeWebhooks::new(SECRET), delivery(&payload, &signature)).await.unwrap());
        assert_eq!(second["outcome"], "duplicate");
        let payment = ledger.payment_for_order("ord_1").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Voided);
    }

    #[tokio::test]
    async fn when_signed_with_another_secret_should_400() {
        let now = chrono::Utc::now().timestamp();
        let payload = r#"{"id":"evt_1","type":"x","created":0,"data":{"object":{}}}"#;
        let response = handle(
            &InMemoryOrders::new(),
            &StripeWebhooks::new(SECRET),
            delivery(payload, &sign(payload.as_bytes(), "whsec_other", now)),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 400);
    }

    #[tokio::test]
    async fn when_event_names_another_payment_should_answer_200_ignored_and_keep_the_orders_payment() {
        let ledger = bound_ledger().await;
        let now = chrono::Utc::now().timestamp();
        let payload = canceled("pi_attacker", now);
        let response =
            handle(&ledger, &StripeWebhooks::new(SECRET), delivery(&payload, &sign(payload.as_bytes(), SECRET, now)))
                .await
                .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["outcome"], "ignored");
        let payment = ledger.payment_for_order("ord_1").await.unwrap().unwrap();
        assert_eq!((payment.payment_id.as_str(), payment.status), ("pi_1", PaymentStatus::Authorized));
    }

    #[tokio::test]
    async fn when_event_is_dated_ten_minutes_ahead_should_400_invalid_parameter_created() {
        let ledger = bound_ledger().await;
        let now = chrono::Utc::now().timestamp();
        let payload = canceled("pi_1", now + 600);
        let response =
            handle(&ledger, &StripeWebhooks::new(SECRET), delivery(&payload, &sign(payload.as_bytes(), SECRET, now)))
                .await
                .unwrap();
        assert_eq!(response.status(), 400);
        let body = body_json(&response);
        assert_eq!(
            (body["error"]["code"].as_str(), body["error"]["field"].as_str()),
            (Some("invalid_parameter"), Some("created"))
        );
        assert_eq!(ledger.payment_for_order("ord_1").await.unwrap().unwrap().status, PaymentStatus::Authorized);
    }
}
