//! Reads an order for its signed-in owner (bearer token) or for the holder of its `X-Order-Token`; anyone else
//! gets 404. The route has no authorizer (guests use it), so the bearer token is verified here. The token may
//! come as `?order_token=` instead, which is how the link in a guest's confirmation email carries it (the
//! header wins when both are given).

use commerce_app::ports::{OrderReader, PaymentLedger};
use commerce_app::services::cart::CallerResolver;
use commerce_app::services::orders;
use commerce_domain::ids::OrderId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

/// What the handler needs, built once per cold start.
pub struct Deps<O, V> {
    pub orders: O,
    pub verifier: V,
}

pub async fn handle<O, V>(deps: &Deps<O, V>, req: Request) -> Result<Response<Body>, Error>
where
    O: OrderReader + PaymentLedger,
    V: CallerResolver,
{
    let result = async {
        let order_id: OrderId = api::path(&req, "order_id")?;
        let authorization = api::header(&req, "authorization");
        let token = api::header(&req, "x-order-token").or_else(|| api::query_param(&req, "order_token"));
        let access = orders::order_access(&deps.verifier, authorization.as_deref(), token).await?;
        orders::get_order(&deps.orders, &access, &order_id).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::cart::FixedCallers;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::{demo_guest_order, demo_orders, InMemoryOrders, InMemoryPayments, DEMO_ORDER_TOKEN};

    async fn deps() -> Deps<InMemoryOrders, FixedCallers> {
        let payments = InMemoryPayments::new();
        let orders = demo_orders(&payments).await;
        demo_guest_order(&orders, &payments).await.unwrap();
        let verifier =
            FixedCallers::default().shopper("<id token>", "shopper-1").shopper("<shopper-2 id token>", "shopper-2");
        Deps { orders, verifier }
    }

    fn read(order_id: &str, headers: &[(&str, &str)]) -> lambda_http::Request {
        let mut req =
            request("GET", "/v1/orders/{order_id}", &format!("/v1/orders/{order_id}")).path_param("order_id", order_id);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        req.build()
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-order").as_ref()) {
            let deps = deps().await;
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_owner_reads_should_see_status_derived_from_events_and_the_payment() {
        let deps = deps().await;
        let body = body_json(
            &handle(&deps, read("ord_demo-shipped", &[("authorization", "Bearer <id token>")])).await.unwrap(),
        );
        assert_eq!(body["status"], "shipped");
        assert_eq!(body["events"].as_array().map(Vec::len), Some(4));
        assert_eq!(body["shipments"].as_array().map(Vec::len), Some(2));
        let usd = |amount: i64| serde_json::json!({"amount": amount, "currency": "USD"});
        let expected = serde_json::json!({"status": "captured", "authorized": usd(3900), "captured": usd(3900), "refunded": usd(0)});
        assert_eq!(body["payment"], expected);
    }

    #[tokio::test]
    async fn when_a_guest_presents_the_order_token_should_read_the_order_with_its_authorization() {
        let deps = deps().await;
        let response = handle(&deps, read("ord_demo-guest", &[("x-order-token", DEMO_ORDER_TOKEN)])).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        let body = body_json(&response);
        assert_eq!((body["order_id"].as_str(), body["status"].as_str()), (Some("ord_demo-guest"), Some("confirmed")));
        assert_eq!(body["payment"]["status"], "authorized");
        assert_eq!(body["payment"]["authorized"], body["total"]);
        assert_eq!(body["payment"]["captured"], serde_json::json!({"amount": 0, "currency": "USD"}));
    }

    #[tokio::test]
    async fn when_the_token_is_wrong_missing_or_someone_elses_should_404_as_if_no_order_existed() {
        let deps = deps().await;
        let cases: [(&str, &[(&str, &str)]); 5] = [
            ("ord_demo-guest", &[]),
            ("ord_demo-guest", &[("x-order-token", "a-wrong-token")]),
            ("ord_demo-guest", &[("authorization", "Bearer <shopper-2 id token>")]),
            ("ord_demo-confirmed", &[("x-order-token", DEMO_ORDER_TOKEN)]),
            ("ord_demo-nothing", &[("x-order-token", DEMO_ORDER_TOKEN)]),
        ];
        for (order_id, headers) in cases {
            let response = handle(&deps, read(order_id, headers)).await.unwrap();
            assert_eq!(response.status(), 404, "{order_id} {headers:?}");
            assert_eq!(body_json(&response)["error"]["code"], "not_found");
        }
    }

    #[tokio::test]
    async fn when_the_emailed_link_carries_the_token_in_the_query_should_read_the_order() {
        let deps = deps().await;
        let link = |token: &str| {
            request("GET", "/v1/orders/{order_id}", "/v1/orders/ord_demo-guest")
                .path_param("order_id", "ord_demo-guest")
                .query("order_token", token)
        };
        assert_eq!(handle(&deps, link(DEMO_ORDER_TOKEN).build()).await.unwrap().status(), 200);
        assert_eq!(handle(&deps, link("a-wrong-token").build()).await.unwrap().status(), 404);
        // The header wins: a wrong header with a right query is refused.
        let both = link(DEMO_ORDER_TOKEN).header("x-order-token", "a-wrong-token").build();
        assert_eq!(handle(&deps, both).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_the_bearer_token_does_not_verify_should_401() {
        let deps = deps().await;
        let forged = [("authorization", "Bearer forged"), ("x-order-token", DEMO_ORDER_TOKEN)];
        assert_eq!(handle(&deps, read("ord_demo-guest", &forged)).await.unwrap().status(), 401);
    }
}
