//! Anyone lists a product's approved reviews: `sort=newest|helpful|rating_desc|rating_asc`, `rating=1..5`,
//! `limit`, `cursor`; authors by display name only.

use commerce_app::ports::ReviewReader;
use commerce_app::services::reviews;
use commerce_domain::ids::ProductId;
use commerce_domain::review::ReviewQuery;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ReviewReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let product_id: ProductId = api::path(&req, "product_id")?;
        let param = |name: &str| api::query_param(&req, name);
        let query = ReviewQuery::parse(
            param("sort").as_deref(),
            param("rating").as_deref(),
            param("cursor").as_deref(),
            param("limit").as_deref(),
        )?;
        reviews::list_reviews(store, &product_id, &query).await
    }
    .await;
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};
    use serde_json::json;

    const PRODUCT: &str = "prd_demo-0001";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        for (i, (rating, status)) in
            [(5, ReviewStatus::Approved), (2, ReviewStatus::Approved), (4, ReviewStatus::Pending)]
                .into_iter()
                .enumerate()
        {
            let mut review = fixture_review(
                &format!("rev_01j0000000000000000000000{i}"),
                PRODUCT,
                "s",
                &format!("u{i}"),
                rating,
                status,
            );
            review.helpful = 10 - i as u32;
            review.created_at += chrono::Duration::minutes(i as i64);
            store.insert(review);
        }
        store
    }

    fn list(query: &[(&str, &str)]) -> Request {
        let mut req = request("GET", "/v1/products/{product_id}/reviews", &format!("/v1/products/{PRODUCT}/reviews"))
            .path_param("product_id", PRODUCT);
        for (name, value) in query {
            req = req.query(name, value);
        }
        req.build()
    }

    #[tokio::test]
    async fn when_listing_should_show_only_approved_reviews_without_author_ids() {
        let response = handle(&store(), list(&[])).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 200, "{body}");
        let ratings: Vec<_> = body["items"].as_array().unwrap().iter().map(|r| r["rating"].clone()).collect();
        assert_eq!(ratings, [json!(2), json!(5)], "newest first, the pending one left out");
        assert!(body["items"][0].get("author_id").is_none());
        assert!(body["items"][0].get("status").is_none());
    }

    #[tokio::test]
    async fn when_sorting_and_filtering_should_order_and_keep_the_matching_ones() {
        let body = body_json(&handle(&store(), list(&[("sort", "rating_asc")])).await.unwrap());
        assert_eq!(body["items"][0]["rating"], 2);
        let body = body_json(&handle(&store(), list(&[("sort", "helpful")])).await.unwrap());
        assert_eq!(body["items"][0]["helpful"], 10);
        let body = body_json(&handle(&store(), list(&[("rating", "5")])).await.unwrap());
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        let page = body_json(&handle(&store(), list(&[("limit", "1")])).await.unwrap());
        assert!(page["next_cursor"].is_string());
    }

    #[tokio::test]
    async fn when_a_parameter_is_malformed_should_400_naming_it() {
        for (name, value) in [("sort", "best"), ("rating", "0"), ("limit", "51")] {
            let response = handle(&store(), list(&[(name, value)])).await.unwrap();
            assert_eq!(response.status(), 400);
            assert_eq!(body_json(&response)["error"]["field"], name);
        }
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-reviews").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
