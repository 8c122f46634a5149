//! Parses the refund (`{"lines": [{"sku", "quantity"}], "shipping": bool, "reason"?}`) and the required
//! `Idempotency-Key`, refunds the seller's share; 200 with the seller's part.

use commerce_app::ports::{OrderEventPublisher, OrderReader, OrderWriter, PaymentLedger, PaymentProvider};
use commerce_app::services::orders::{self, KeyedRefund, PaymentDeps, RefundRequest};
use commerce_domain::ids::OrderId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<O, P, Q>(deps: &PaymentDeps<O, P, Q>, req: Request) -> Result<Response<Body>, Error>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    P: PaymentProvider,
    Q: OrderEventPublisher,
{
    let result = async {
        let caller = auth::seller(&req)?;
        let order_id: OrderId = api::path(&req, "order_id")?;
        let request: RefundRequest = api::parse_json(&req)?;
        let key = api::header(&req, "idempotency-key");
        let keyed = KeyedRefund { request, idempotency_key: key.as_deref() };
        let now = chrono::Utc::now();
        orders::refund_part(&deps.orders, &deps.provider, &deps.events, &caller, &order_id, keyed, now).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::{demo_orders, InMemoryOrders, InMemoryPayments};
    use serde_json::json;

    async fn deps() -> PaymentDeps<InMemoryOrders, InMemoryPayments, InMemoryOrders> {
        let provider = InMemoryPayments::new();
        let orders = demo_orders(&provider).await;
        PaymentDeps { orders, provider, events: InMemoryOrders::new() }
    }

    fn refund(order: &str, seller: &str, key: &str, body: serde_json::Value) -> lambda_http::Request {
        request("POST", "/v1/seller/orders/{order_id}/refunds", &format!("/v1/seller/orders/{order}/refunds"))
            .path_param("order_id", order)
            .caller(seller, "[sellers]")
            .header("idempotency-key", key)
            .json(&body)
            .build()
    }

    fn refunded(deps: &PaymentDeps<InMemoryOrders, InMemoryPayments, InMemoryOrders>) -> i64 {
        deps.provider.payments().into_iter().find(|p| p.order_id == "ord_demo-shipped").unwrap().refunded
    }

    #[tokio::test]
    async fn when_a_seller_refunds_a_unit_twice_with_one_key_should_refund_it_once() {
        let deps = deps().await;
        let body = json!({"lines": [{"sku": "demo-sku-1", "quantity": 1}], "reason": "scratched"});
        for _ in 0..2 {
            let response = handle(&deps, refund("ord_demo-shipped", "seller-1", "k-1", body.clone())).await.unwrap();
            assert_eq!(response.status(), 200, "{}", body_json(&response));
        }
        assert_eq!(refunded(&deps), 1500);
        assert_eq!(deps.events.published().len(), 1);
    }

    #[tokio::test]
    async fn when_the_refund_is_bad_or_not_the_sellers_should_4xx() {
        let deps = deps().await;
        let unit = json!({"lines": [{"sku": "demo-sku-1", "quantity": 1}]});
        let cases = [
            (refund("ord_demo-shipped", "seller-9", "k", unit.clone()), 404),
            (
                refund("ord_demo-shipped", "seller-1", "k", json!({"lines": [{"sku": "demo-sku-1", "quantity": 3}]})),
                422,
            ),
            (refund("ord_demo-shipped", "seller-1", "k", json!({"lines": [], "shipping": false})), 422),
            (
                refund("ord_demo-shipped", "seller-1", "k", json!({"lines": [{"sku": "demo-sku-1", "quantity": -1}]})),
                400,
            ),
            (refund("ord_demo-shipped", "seller-1", "k", json!({"lines": [], "tip": 1})), 400),
            (refund("ord_demo-confirmed", "seller-1", "k", unit.clone()), 409),
            (refund("ord_demo-shipped", "seller-1", "bad key", unit), 400),
        ];
        for (req, status) in cases {
            let response = handle(&deps, req).await.unwrap();
            assert_eq!(response.status(), status, "{}", body_json(&response));
        }
        assert_eq!(refunded(&deps), 0);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/refund-order-part").as_ref()) {
            let deps = deps().await;
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
