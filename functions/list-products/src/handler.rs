//! Lists a category's active products (descendants included), newest first or by price, cursor-paginated.

use commerce_app::ports::CategoryListing;
use commerce_app::services::catalog;
use commerce_domain::catalog::{CategoryQuery, ListSort, PageLimit};
use commerce_domain::DomainError;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl CategoryListing, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let query = CategoryQuery {
            category_id: api::query_param(&req, "category")
                .ok_or_else(|| DomainError::invalid_parameter("category", "is required"))?,
            sort: api::query_parse::<ListSort>(&req, "sort")?.unwrap_or(ListSort::Newest),
            limit: PageLimit::parse(api::query_param(&req, "limit").as_deref())?,
            cursor: api::query_param(&req, "cursor"),
        };
        catalog::list_products(store, query).await
    }
    .await;
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder};
    use serde_json::Value;

    const ROUTE: &str = "/v1/products";

    fn list(category: &str) -> RequestBuilder {
        request("GET", ROUTE, ROUTE).query("category", category)
    }

    async fn all_pages(req: RequestBuilder) -> Vec<Value> {
        let store = demo_store();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page = req.clone();
            if let Some(c) = &cursor {
                page = page.query("cursor", c);
            }
            let response = handle(&store, page.build()).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["cache-control"], api::PUBLIC_CACHE);
            let body = body_json(&response);
            items.extend(body["items"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    #[tokio::test]
    async fn when_listing_a_parent_category_should_include_descendants_newest_first() {
        let items = all_pages(list("cat_electronics").query("limit", "7")).await;
        assert_eq!(items.len(), 90, "laptops, phones and headphones");
        let created: Vec<&str> = items.iter().map(|i| i["created_at"].as_str().unwrap()).collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    }

    #[tokio::test]
    async fn when_sorting_by_price_should_order_by_lowest_variant_price() {
        let items = all_pages(list("cat_tshirts").query("sort", "price_asc").query("limit", "9")).await;
        assert_eq!(items.len(), 30);
        let prices: Vec<i64> = items.iter().map(|i| i["price_min"]["amount"].as_i64().unwrap()).collect();
        assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
        let desc = all_pages(list("cat_tshirts").query("sort", "price_desc")).await;
        let prices: Vec<i64> = desc.iter().map(|i| i["price_min"]["amount"].as_i64().unwrap()).collect();
        assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}");
    }

    #[tokio::test]
    async fn when_category_is_missing_or_sort_unknown_should_400() {
        let response = handle(&demo_store(), request("GET", ROUTE, ROUTE).build()).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["cache-control"], api::NO_STORE);
        assert_eq!(body_json(&response)["error"]["field"], "category");
        let response = handle(&demo_store(), list("cat_books").query("sort", "cheapest").build()).await.unwrap();
        assert_eq!(body_json(&response)["error"]["field"], "sort");
    }

    #[tokio::test]
    async fn when_cursor_is_tampered_should_400() {
        let response =
            handle(&demo_store(), list("cat_books").query("cursor", "bm90LWEtY3Vyc29y").build()).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["field"], "cursor");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-products").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
