//! Parses the update and records it on the seller's shipment: 201 when recorded, 200 when it was already.

use commerce_app::ports::{OrderEventPublisher, OrderReader, OrderWriter};
use commerce_app::services::tracking;
use commerce_domain::ids::OrderId;
use commerce_domain::order::Tracked;
use commerce_domain::tracking::TrackingUpdate;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    orders: &(impl OrderReader + OrderWriter),
    events: &impl OrderEventPublisher,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let order_id: OrderId = api::path(&req, "order_id")?;
        let shipment_id = api::path_param(&req, "shipment_id")?;
        let update: TrackingUpdate = api::parse_json(&req)?;
        tracking::seller_update(orders, events, &caller, &order_id, &shipment_id, update, chrono::Utc::now()).await
    }
    .await;
    let status = match &result {
        Ok((Tracked::Recorded { .. }, _)) => api::StatusCode::CREATED,
        _ => api::StatusCode::OK,
    };
    let body = result.map(|(outcome, shipment)| serde_json::json!({ "outcome": outcome, "shipment": shipment }));
    Ok(api::respond(status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::{demo_orders, InMemoryOrders, InMemoryPayments};

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/track-shipment").as_ref()) {
            let orders = demo_orders(&InMemoryPayments::new()).await;
            let response = handle(&orders, &InMemoryOrders::new(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    fn post(order_id: &str, shipment_id: &str, seller: &str, body: serde_json::Value) -> Request {
        let path = format!("/v1/seller/orders/{order_id}/shipments/{shipment_id}/events");
        request("POST", "/v1/seller/orders/{order_id}/shipments/{shipment_id}/events", &path)
            .path_param("order_id", order_id)
            .path_param("shipment_id", shipment_id)
            .caller(seller, "sellers")
            .body(body.to_string())
            .build()
    }

    fn update(status: &str, minutes_ago: i64, id: Option<&str>) -> serde_json::Value {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        let mut body = serde_json::json!({ "status": status, "occurred_at": at.to_rfc3339(), "location": "Hub 7" });
        if let Some(id) = id {
            body["event_id"] = id.into();
        }
        body
    }

    /// The demo's shipped order and its seller-1 shipment id.
    async fn shipped() -> (InMemoryOrders, String) {
        let orders = demo_orders(&InMemoryPayments::new()).await;
        let order = orders.get_order("ord_demo-shipped").await.unwrap().unwrap();
        let shipment_id = order.shipment_id("seller-1").unwrap();
        (orders, shipment_id)
    }

    #[tokio::test]
    async fn a_sellers_updates_build_the_timeline_and_delivered_delivers_their_part() {
        let (orders, shipment) = shipped().await;
        let events = InMemoryOrders::new();
        let first = handle(
            &orders,
            &events,
            post("ord_demo-shipped", &shipment, "seller-1", update("in_transit", 30, Some("u1"))),
        )
        .await
        .unwrap();
        assert_eq!(first.status(), 201, "{}", body_json(&first));
        let again = handle(
            &orders,
            &events,
            post("ord_demo-shipped", &shipment, "seller-1", update("in_transit", 30, Some("u1"))),
        )
        .await
        .unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(body_json(&again)["outcome"]["outcome"], "duplicate");
        let done =
            handle(&orders, &events, post("ord_demo-shipped", &shipment, "seller-1", update("delivered", 1, None)))
                .await
                .unwrap();
        let body = body_json(&done);
        assert_eq!(body["outcome"], serde_json::json!({"outcome": "recorded", "delivered": true}), "{body}");
        let statuses: Vec<&str> =
            body["shipment"]["timeline"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["label_created", "in_transit", "delivered"]);
        assert_eq!(body["shipment"]["status"], "delivered");
        let order = orders.get_order("ord_demo-shipped").await.unwrap().unwrap();
        assert!(order.is_delivered("seller-1"));
        let published: Vec<_> = events.published().into_iter().map(|n| format!("{:?}", n.kind)).collect();
        assert_eq!(published, ["OrderDelivered"]);
    }

    #[tokio::test]
    async fn another_sellers_shipment_or_a_made_up_id_is_not_found() {
        let (orders, shipment) = shipped().await;
        let events = InMemoryOrders::new();
        for (order_id, shipment_id, seller) in [
            ("ord_demo-shipped", shipment.as_str(), "seller-2"),
            ("ord_demo-shipped", "shp_1", "seller-1"),
            ("ord_demo-shipped", "shp_99999999999", "seller-1"),
            ("ord_demo-shipped", "nonsense", "seller-1"),
            ("ord_demo-confirmed", shipment.as_str(), "seller-1"),
        ] {
            let response = handle(&orders, &events, post(order_id, shipment_id, seller, update("in_transit", 5, None)))
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{order_id} {shipment_id} {seller}: {}", body_json(&response));
        }
    }

    #[tokio::test]
    async fn a_bad_update_is_a_4xx_naming_its_field() {
        let (orders, shipment) = shipped().await;
        let events = InMemoryOrders::new();
        let future = update("in_transit", -120, None);
        let unknown = serde_json::json!({"status": "lost", "occurred_at": "2026-01-01T00:00:00Z"});
        let extra = serde_json::json!({"status": "in_transit", "occurred_at": "2026-01-01T00:00:00Z", "x": 1});
        for (body, status, field) in [(future, 422, "occurred_at"), (unknown, 400, "status"), (extra, 400, "x")] {
            let response =
                handle(&orders, &events, post("ord_demo-shipped", &shipment, "seller-1", body.clone())).await.unwrap();
            let json = body_json(&response);
            assert_eq!(response.status(), status, "{body}: {json}");
            assert!(json.to_string().contains(field), "{json}");
        }
        let order = orders.get_order("ord_demo-shipped").await.unwrap().unwrap();
        assert_eq!(order.shipment_view("seller-1").unwrap().timeline.len(), 1, "nothing refused was recorded");
    }
}
