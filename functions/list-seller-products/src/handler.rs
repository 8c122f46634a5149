//! Lists the caller's products (an admin may pass `seller_id`), newest first, cursor-paginated.

use commerce_app::ports::SellerProducts;
use commerce_app::services::catalog;
use commerce_domain::catalog::PageLimit;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl SellerProducts, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let limit = PageLimit::parse(api::query_param(&req, "limit").as_deref())?;
        let seller_id = api::query_param(&req, "seller_id");
        let cursor = api::query_param(&req, "cursor");
        catalog::list_seller_products(store, &caller, seller_id.as_deref(), limit, cursor.as_deref()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder, DEMO_SELLERS};

    const ROUTE: &str = "/v1/seller/products";

    fn list() -> RequestBuilder {
        request("GET", ROUTE, ROUTE)
    }

    #[tokio::test]
    async fn when_seller_pages_through_should_see_only_their_products_once() {
        let store = demo_store();
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut req = list().query("limit", "100").caller(DEMO_SELLERS[1], "sellers");
            if let Some(c) = &cursor {
                req = req.query("cursor", c);
            }
            let body = body_json(&handle(&store, req.build()).await.unwrap());
            for item in body["items"].as_array().unwrap() {
                assert_eq!(item["seller_id"], DEMO_SELLERS[1]);
                seen.push(item["product_id"].as_str().unwrap().to_owned());
            }
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
        assert_eq!(seen.len(), 75, "every fourth demo product belongs to the second seller");
    }

    #[tokio::test]
    async fn when_shopper_lists_seller_products_should_403() {
        let response = handle(&demo_store(), list().caller("shopper-1", "shoppers").build()).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_seller_names_another_seller_should_403_but_admin_may() {
        let req = list().query("seller_id", DEMO_SELLERS[0]).caller(DEMO_SELLERS[1], "sellers").build();
        assert_eq!(handle(&demo_store(), req).await.unwrap().status(), 403);
        let req = list().query("seller_id", DEMO_SELLERS[0]).caller("admin-1", "admins").build();
        let response = handle(&demo_store(), req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["items"].as_array().unwrap().len(), 20);
    }

    #[tokio::test]
    async fn when_limit_is_over_100_should_400() {
        let response = handle(&demo_store(), list().query("limit", "101").caller(DEMO_SELLERS[0], "sellers").build())
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["field"], "limit");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-seller-products").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
