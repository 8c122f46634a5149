//! Hands the carrier, the raw body and the signature header to the tracking use case.

use commerce_app::ports::{CarrierSignature, OrderEventPublisher, OrderReader, OrderWriter, ParcelIndex};
use commerce_app::services::tracking;
use commerce_aws::shipping::webhooks::SIGNATURE_HEADER;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    orders: &(impl OrderReader + OrderWriter + ParcelIndex),
    events: &impl OrderEventPublisher,
    signatures: &impl CarrierSignature,
    req: Request,
) -> Result<Response<Body>, Error> {
    let payload = api::raw_body(&req);
    let result = async {
        let carrier = api::path_param(&req, "carrier")?;
        let signature = api::header(&req, SIGNATURE_HEADER);
        let now = chrono::Utc::now();
        tracking::carrier_update(orders, events, signatures, &carrier, signature.as_deref(), payload, now).await
    }
    .await;
    let body = result.map(|outcome| serde_json::json!({ "received": true, "outcome": outcome }));
    Ok(api::respond(api::StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::services::orders::{ship, ShipRequest};
    use commerce_aws::payments::stripe::sign;
    use commerce_aws::shipping::webhooks::CarrierWebhooks;
    use commerce_domain::auth::{Caller, Role};
    use commerce_domain::tracking::Carrier;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::{demo_orders, InMemoryOrders, InMemoryPayments};

    const SECRET: &str = "carrier-secret";

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/carrier-webhook").as_ref()) {
            let (orders, events) = shipped_with_ups().await;
            let response = handle(&orders, &events, &CarrierWebhooks::new(SECRET), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    fn delivery(carrier: &str, body: &str, signature: Option<String>) -> Request {
        let path = format!("/v1/webhooks/carriers/{carrier}");
        let mut builder = request("POST", "/v1/webhooks/carriers/{carrier}", &path).path_param("carrier", carrier);
        if let Some(signature) = signature {
            builder = builder.header(SIGNATURE_HEADER, &signature);
        }
        builder.body(body.to_owned()).build()
    }

    fn event(id: &str, number: &str, status: &str, minutes_ago: i64) -> String {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        serde_json::json!({"id": id, "tracking_number": number, "status": status, "occurred_at": at.to_rfc3339(),
                           "location": "Louisville, KY", "carrier_extra": {"ignored": true}})
        .to_string()
    }

    fn signed(body: &str) -> Option<String> {
        Some(sign(body.as_bytes(), SECRET, chrono::Utc::now().timestamp()))
    }

    /// The demo's confirmed order, both sellers shipped with UPS: seller-1 as `1ZSELLER1`, seller-2 as `1ZSELLER2`.
    async fn shipped_with_ups() -> (InMemoryOrders, InMemoryOrders) {
        let payments = InMemoryPayments::new();
        let orders = demo_orders(&payments).await;
        let events = InMemoryOrders::new();
        let order_id = "ord_demo-confirmed".parse().unwrap();
        for seller in ["seller-1", "seller-2"] {
            let caller = Caller { user_id: seller.into(), email: None, roles: vec![Role::Seller] };
            let request = ShipRequest {
                tracking_number: format!("1Z{}", seller.replace('-', "").to_uppercase()),
                carrier: Some(Carrier::Ups),
                tracking_url: None,
            };
            ship(&orders, &payments, &events, &caller, &order_id, request, chrono::Utc::now()).await.unwrap();
        }
        (orders, events)
    }

    #[tokio::test]
    async fn a_signed_update_is_recorded_once_on_its_parcels_shipment_only() {
        let (orders, events) = shipped_with_ups().await;
        let webhooks = CarrierWebhooks::new(SECRET);
        let body = event("evt_1", "1ZSELLER1", "out_for_delivery", 3);
        let first = handle(&orders, &events, &webhooks, delivery("ups", &body, signed(&body))).await.unwrap();
        assert_eq!(first.status(), 200, "{}", body_json(&first));
        assert_eq!(body_json(&first)["outcome"], serde_json::json!({"recorded": 1, "duplicate": 0, "ignored": 0}));
        let again = handle(&orders, &events, &webhooks, delivery("ups", &body, signed(&body))).await.unwrap();
        assert_eq!(body_json(&again)["outcome"], serde_json::json!({"recorded": 0, "duplicate": 1, "ignored": 0}));
        let order = orders.get_order("ord_demo-confirmed").await.unwrap().unwrap();
        let mine = order.shipment_view("seller-1").unwrap();
        assert_eq!(mine.status, commerce_domain::tracking::TrackingStatus::OutForDelivery);
        assert_eq!(mine.timeline.len(), 2);
        let scanned: Vec<_> =
            mine.timeline.iter().filter(|e| e.source == commerce_domain::tracking::TrackingSource::Carrier).collect();
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].location.as_deref(), Some("Louisville, KY"));
        if let Some(other) = order.shipment_view("seller-2") {
            assert_eq!(other.timeline.len(), 1, "another parcel's shipment is untouched");
        }
        let delivered = event("evt_2", "1ZSELLER1", "delivered", 1);
        handle(&orders, &events, &webhooks, delivery("ups", &delivered, signed(&delivered))).await.unwrap();
        let order = orders.get_order("ord_demo-confirmed").await.unwrap().unwrap();
        assert!(order.is_delivered("seller-1"));
        assert!(events.published().iter().any(|n| format!("{:?}", n.kind) == "OrderDelivered"));
    }

    #[tokio::test]
    async fn unsigned_forged_stale_or_unknown_deliveries_are_refused() {
        let (orders, events) = shipped_with_ups().await;
        let webhooks = CarrierWebhooks::new(SECRET);
        let body = event("evt_1", "1ZSELLER1", "in_transit", 3);
        let stale = Some(sign(body.as_bytes(), SECRET, chrono::Utc::now().timestamp() - 600));
        let forged = Some(sign(body.as_bytes(), "another-secret", chrono::Utc::now().timestamp()));
        for (signature, status) in [(None, 400), (stale, 400), (forged, 400)] {
            let response = handle(&orders, &events, &webhooks, delivery("ups", &body, signature)).await.unwrap();
            assert_eq!(response.status(), status, "{}", body_json(&response));
        }
        // The signature covers the body: the same signature over a changed body fails.
        let tampered = body.replace("in_transit", "delivered");
        let response = handle(&orders, &events, &webhooks, delivery("ups", &tampered, signed(&body))).await.unwrap();
        assert_eq!(response.status(), 400);
        // A parcel we do not have (or another carrier's number) is 404, so the carrier tries again later.
        let huge = "9".repeat(5000);
        for (carrier, number) in [("ups", "1ZUNKNOWN"), ("fedex", "1ZSELLER1"), ("ups", huge.as_str()), ("ups", "  ")] {
            let body = event("evt_9", number, "in_transit", 3);
            let response = handle(&orders, &events, &webhooks, delivery(carrier, &body, signed(&body))).await.unwrap();
            assert_eq!(response.status(), 404, "{carrier} {number}");
        }
        for carrier in ["other", "royalmail", "UPS"] {
            let response = handle(&orders, &events, &webhooks, delivery(carrier, &body, signed(&body))).await.unwrap();
            assert_eq!(response.status(), 404, "{carrier}");
        }
        let nonsense = "{\"id\": 1}";
        let response = handle(&orders, &events, &webhooks, delivery("ups", nonsense, signed(nonsense))).await.unwrap();
        assert_eq!(response.status(), 400);
        let order = orders.get_order("ord_demo-confirmed").await.unwrap().unwrap();
        assert_eq!(order.shipment_view("seller-1").unwrap().timeline.len(), 1, "nothing refused was recorded");
    }
}
