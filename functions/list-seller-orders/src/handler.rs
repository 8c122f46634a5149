//! Lists the seller's order parts.

use commerce_app::ports::SellerOrders;
use commerce_app::services::orders;
use commerce_domain::catalog::PageLimit;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl SellerOrders, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let limit = PageLimit::parse(api::query_param(&req, "limit").as_deref())?;
        let cursor = api::query_param(&req, "cursor");
        orders::list_seller_orders(store, &caller, limit, cursor.as_deref()).await
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
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-seller-orders").as_ref()) {
            let store = demo_orders(&InMemoryPayments::new()).await;
            let response = handle(&store, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_seller_lists_should_see_only_own_lines() {
        use commerce_testkit::http::request;
        let store = demo_orders(&InMemoryPayments::new()).await;
        let req = request("GET", "/v1/seller/orders", "/v1/seller/orders").caller("seller-2", "[sellers]").build();
        let body = body_json(&handle(&store, req).await.unwrap());
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 4, "pending orders are not shown to sellers");
        for item in items {
            assert!(item["lines"].as_array().unwrap().iter().all(|l| l["seller_id"] == "seller-2"));
            assert_eq!(item["subtotal"]["amount"], 900);
        }
    }
}
