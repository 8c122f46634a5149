//! Lists the caller's orders.

use commerce_app::ports::CustomerOrders;
use commerce_app::services::orders;
use commerce_domain::catalog::PageLimit;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl CustomerOrders, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let limit = PageLimit::parse(api::query_param(&req, "limit").as_deref())?;
        let cursor = api::query_param(&req, "cursor");
        orders::list_my_orders(store, &caller, limit, cursor.as_deref()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::orders::{demo_orders, InMemoryPayments};

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-my-orders").as_ref()) {
            let store = demo_orders(&InMemoryPayments::new()).await;
            let response = handle(&store, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_paging_should_list_newest_first_without_repeats() {
        use commerce_testkit::http::request;
        let store = demo_orders(&InMemoryPayments::new()).await;
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req =
                request("GET", "/v1/me/orders", "/v1/me/orders").query("limit", "2").caller("shopper-1", "[shoppers]");
            if let Some(c) = &cursor {
                req = req.query("cursor", c);
            }
            let body = body_json(&handle(&store, req.build()).await.unwrap());
            for item in body["items"].as_array().unwrap() {
                seen.push(item["order_id"].as_str().unwrap().to_owned());
            }
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            seen,
            ["ord_demo-return", "ord_demo-delivered", "ord_demo-shipped", "ord_demo-confirmed", "ord_demo-pending"]
        );
    }
}
