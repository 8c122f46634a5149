//! An admin reads the moderation queue: the pending reviews, oldest first, whole (author and reports
//! included), as `{"items": [...], "next_cursor"}`. `limit` is 1 to 50 (default 20), as for a product's
//! reviews.

use commerce_app::ports::ReviewReader;
use commerce_app::services::reviews;
use commerce_domain::review::ReviewQuery;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ReviewReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::admin(&req)?;
        let limit = api::query_param(&req, "limit");
        let cursor = api::query_param(&req, "cursor");
        let page = ReviewQuery::parse(None, None, cursor.as_deref(), limit.as_deref())?;
        reviews::pending_reviews(store, &caller, page.limit, page.cursor.as_deref()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};
    use serde_json::json;

    const ADMIN: &str = "a1d3f5b7-0c2e-4a6b-8d9f-1e3c5a7b9d0f";
    /// Newest first as inserted: the queue must turn them round.
    const PENDING: [&str; 3] =
        ["rev_01j9zq7c6m5v8k2r4t6y8w0a13", "rev_01j9zq7c6m5v8k2r4t6y8w0a12", "rev_01j9zq7c6m5v8k2r4t6y8w0a11"];
    const APPROVED: &str = "rev_01j9zq7c6m5v8k2r4t6y8w0a1a";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for (i, id) in PENDING.iter().enumerate() {
            let mut review =
                fixture_review(id, "prd_demo-0001", DEMO_SELLERS[0], &format!("author-{i}"), 3, ReviewStatus::Pending);
            review.created_at = start - Duration::hours(i as i64);
            review.reports = 3;
            store.insert(review);
        }
        store.insert(fixture_review(APPROVED, "prd_demo-0001", DEMO_SELLERS[0], "author-9", 5, ReviewStatus::Approved));
        store
    }

    fn list(by: &str, groups: &str, query: &[(&str, &str)]) -> Request {
        let mut req = request("GET", "/v1/admin/reviews", "/v1/admin/reviews").caller(by, groups);
        for (name, value) in query {
            req = req.query(name, value);
        }
        req.build()
    }

    fn ids(response: &Response<Body>) -> Vec<String> {
        let body = body_json(response);
        body["items"].as_array().unwrap().iter().map(|r| r["review_id"].as_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn when_an_admin_lists_should_200_with_the_pending_reviews_oldest_first_and_whole() {
        let response = handle(&store(), list(ADMIN, "admins", &[])).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        assert_eq!(ids(&response), [PENDING[2], PENDING[1], PENDING[0]]);
        let first = &body_json(&response)["items"][0];
        assert_eq!(
            (&first["status"], &first["author_id"], &first["reports"]),
            (&json!("pending"), &json!("author-2"), &json!(3))
        );
    }

    #[tokio::test]
    async fn when_a_limit_is_given_should_answer_at_most_that_many() {
        let response = handle(&store(), list(ADMIN, "admins", &[("limit", "2")])).await.unwrap();
        assert_eq!(
            (response.status().as_u16(), ids(&response)),
            (200, vec![PENDING[2].to_owned(), PENDING[1].to_owned()])
        );
        let response = handle(&store(), list(ADMIN, "admins", &[("limit", "50")])).await.unwrap();
        assert_eq!(ids(&response).len(), 3);
    }

    #[tokio::test]
    async fn when_the_limit_is_out_of_range_should_400_naming_it() {
        for limit in ["0", "51", "ten", "-1"] {
            let response = handle(&store(), list(ADMIN, "admins", &[("limit", limit)])).await.unwrap();
            let body = body_json(&response);
            assert_eq!(response.status(), 400, "{limit}: {body}");
            assert_eq!(
                (&body["error"]["code"], &body["error"]["field"]),
                (&json!("invalid_parameter"), &json!("limit"))
            );
        }
    }

    #[tokio::test]
    async fn when_a_seller_or_a_shopper_lists_should_403_and_without_a_token_401() {
        for (by, groups) in [(DEMO_SELLERS[0], "sellers"), ("author-0", "shoppers")] {
            let response = handle(&store(), list(by, groups, &[("limit", "999")])).await.unwrap();
            assert_eq!(response.status(), 403, "{groups}");
        }
        let anonymous = request("GET", "/v1/admin/reviews", "/v1/admin/reviews").build();
        assert_eq!(handle(&store(), anonymous).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-pending-reviews").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
