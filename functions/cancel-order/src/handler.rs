//! Cancels an order for its signed-in owner (bearer token) or for the holder of its `X-Order-Token`; anyone
//! else gets 404. The route has no authorizer (guests use it), so the bearer token is verified here.

use commerce_app::services::cart::CallerResolver;
use commerce_app::services::orders::{self, Restocking};
use commerce_domain::ids::OrderId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    deps: &impl Restocking,
    verifier: &impl CallerResolver,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let order_id: OrderId = api::path(&req, "order_id")?;
        let authorization = api::header(&req, "authorization");
        let access =
            orders::order_access(verifier, authorization.as_deref(), api::header(&req, "x-order-token")).await?;
        deps.cancel(&access, &order_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::OrderReader;
    use commerce_testkit::cart::FixedCallers;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::orders::{restocking_deps, DEMO_ORDER_TOKEN};

    fn verifier() -> FixedCallers {
        FixedCallers::default().shopper("<id token>", "shopper-1").shopper("<shopper-2 id token>", "shopper-2")
    }

    fn cancel(order_id: &str, headers: &[(&str, &str)]) -> lambda_http::Request {
        let path = format!("/v1/orders/{order_id}/cancel");
        let mut req = request("POST", "/v1/orders/{order_id}/cancel", &path).path_param("order_id", order_id);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        req.build()
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/cancel-order").as_ref()) {
            let deps = restocking_deps().await;
            let response = handle(&deps, &verifier(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_a_guest_cancels_with_the_order_token_should_void_and_record_the_guest() {
        let deps = restocking_deps().await;
        let wrong = handle(&deps, &verifier(), cancel("ord_demo-guest", &[("x-order-token", "wrong")])).await.unwrap();
        assert_eq!((wrong.status().as_u16(), body_json(&wrong)["error"]["code"].as_str()), (404, Some("not_found")));
        let anyone = handle(&deps, &verifier(), cancel("ord_demo-guest", &[])).await.unwrap();
        assert_eq!(anyone.status(), 404);
        let other = [("authorization", "Bearer <shopper-2 id token>")];
        assert_eq!(handle(&deps, &verifier(), cancel("ord_demo-guest", &other)).await.unwrap().status(), 404);
        assert_eq!(deps.orders.get_order("ord_demo-guest").await.unwrap().unwrap().status().as_str(), "confirmed");

        let response =
            handle(&deps, &verifier(), cancel("ord_demo-guest", &[("x-order-token", DEMO_ORDER_TOKEN)])).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        let body = body_json(&response);
        assert_eq!((body["status"].as_str(), body["payment"]["status"].as_str()), (Some("cancelled"), Some("voided")));
        let last = body["events"].as_array().and_then(|e| e.last()).cloned().unwrap_or_default();
        assert_eq!((last["type"].as_str(), last["actor"]["kind"].as_str()), (Some("cancelled"), Some("guest")));
    }
}
