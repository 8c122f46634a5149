//! Parses the tracking number and ships the seller's lines.

use commerce_app::ports::{OrderEventPublisher, OrderReader, OrderWriter, ParcelIndex, PaymentLedger, PaymentProvider};
use commerce_app::services::orders::{self, PaymentDeps, ShipRequest};
use commerce_domain::ids::OrderId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<O, P, Q>(deps: &PaymentDeps<O, P, Q>, req: Request) -> Result<Response<Body>, Error>
where
    O: OrderReader + OrderWriter + PaymentLedger + ParcelIndex,
    P: PaymentProvider,
    Q: OrderEventPublisher,
{
    let result = async {
        let caller = auth::seller(&req)?;
        let order_id: OrderId = api::path(&req, "order_id")?;
        let body: ShipRequest = api::parse_json(&req)?;
        let now = chrono::Utc::now();
        orders::ship(&deps.orders, &deps.provider, &deps.events, &caller, &order_id, body, now).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::{demo_orders, InMemoryOrders, InMemoryPayments};

    async fn deps() -> PaymentDeps<InMemoryOrders, InMemoryPayments, InMemoryOrders> {
        let provider = InMemoryPayments::new();
        let orders = demo_orders(&provider).await;
        PaymentDeps { orders, provider, events: InMemoryOrders::new() }
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/ship-order").as_ref()) {
            let deps = deps().await;
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    fn ship(seller: &str, tracking: &str) -> lambda_http::Request {
        request("POST", "/v1/seller/orders/{order_id}/ship", "/v1/seller/orders/ord_demo-confirmed/ship")
            .path_param("order_id", "ord_demo-confirmed")
            .caller(seller, "[sellers]")
            .json(&serde_json::json!({ "tracking_number": tracking }))
            .build()
    }

    #[tokio::test]
    async fn when_each_seller_ships_should_capture_exactly_their_lines() {
        let deps = deps().await;
        let first = handle(&deps, ship("seller-1", "T-1")).await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(body_json(&first)["status"], "shipped");
        let captured = |deps: &PaymentDeps<InMemoryOrders, InMemoryPayments, InMemoryOrders>| {
            deps.provider.payments().into_iter().find(|p| p.order_id == "ord_demo-confirmed").unwrap().captured
        };
        assert_eq!(captured(&deps), 3000);
        let again = handle(&deps, ship("seller-1", "T-1")).await.unwrap();
        assert_eq!(again.status(), 200, "a repeated shipment is idempotent");
        assert_eq!(captured(&deps), 3000);
        assert_eq!(handle(&deps, ship("seller-2", "T-2")).await.unwrap().status(), 200);
        assert_eq!(captured(&deps), 3900);
        let order = deps.orders.get_order("ord_demo-confirmed").await.unwrap().unwrap();
        assert_eq!(order.status(), commerce_domain::order::OrderStatus::Shipped);
        assert_eq!(deps.events.published().len(), 2);
    }

    #[tokio::test]
    async fn when_seller_has_no_lines_should_404() {
        let deps = deps().await;
        assert_eq!(handle(&deps, ship("seller-9", "T")).await.unwrap().status(), 404);
    }
}
