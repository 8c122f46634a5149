//! The reviewed product's seller (or an admin) replies to an approved review, once: 201 with the public review
//! and its `reply`; 409 `reply_exists` the second time, 403 for anyone else, 404 for a review that is not
//! approved, 422 naming `body` for an empty or too long reply.

use chrono::Utc;
use commerce_app::ports::{ReviewReader, ReviewWriter};
use commerce_app::services::reviews;
use commerce_domain::ids::ReviewId;
use commerce_domain::review::ReplyInput;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl ReviewReader + ReviewWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let review_id: ReviewId = api::path(&req, "review_id")?;
        let input: ReplyInput = api::parse_json(&req)?;
        reviews::reply(store, &caller, &review_id, input, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReviewReader;
    use commerce_domain::review::{ReviewStatus, MAX_REPLY_CHARS};
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};
    use serde_json::json;

    const APPROVED: &str = "rev_01j9zq7c6m5v8k2r4t6y8w0a1b";
    const PENDING: &str = "rev_01j9zq7c6m5v8k2r4t6y8w0a1c";
    const AUTHOR: &str = "0f6b3a52-5c1e-4d8a-9a57-6f0d2c1b7e11";
    const ADMIN: &str = "a1d3f5b7-0c2e-4a6b-8d9f-1e3c5a7b9d0f";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        store.insert(fixture_review(APPROVED, "prd_demo-0001", DEMO_SELLERS[0], AUTHOR, 3, ReviewStatus::Approved));
        store.insert(fixture_review(PENDING, "prd_demo-0002", DEMO_SELLERS[0], AUTHOR, 1, ReviewStatus::Pending));
        store
    }

    fn reply(review_id: &str, by: &str, groups: &str, body: serde_json::Value) -> Request {
        let route = "/v1/seller/reviews/{review_id}/reply";
        request("POST", route, &format!("/v1/seller/reviews/{review_id}/reply"))
            .path_param("review_id", review_id)
            .json(&body)
            .caller(by, groups)
            .build()
    }

    fn thanks() -> serde_json::Value {
        json!({"body": "Thanks for the review; the next batch ships with a longer cable."})
    }

    #[tokio::test]
    async fn when_the_products_seller_replies_should_201_with_the_reply_and_a_second_reply_409() {
        let store = store();
        let response = handle(&store, reply(APPROVED, DEMO_SELLERS[0], "sellers", thanks())).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 201, "{body}");
        assert_eq!((&body["review_id"], &body["reply"]["body"]), (&json!(APPROVED), &thanks()["body"]));
        assert!(body["reply"]["replied_at"].is_string(), "{body}");
        assert!(body.get("author_id").is_none(), "the public review: {body}");
        let again = handle(&store, reply(APPROVED, DEMO_SELLERS[0], "sellers", json!({"body": "Also"}))).await.unwrap();
        assert_eq!(again.status(), 409);
        assert_eq!(body_json(&again)["error"]["code"], "reply_exists");
        let stored = store.get_review(APPROVED).await.unwrap().unwrap();
        assert_eq!(stored.reply.map(|r| r.body), thanks()["body"].as_str().map(str::to_owned));
    }

    #[tokio::test]
    async fn when_an_admin_replies_should_201() {
        let response = handle(&store(), reply(APPROVED, ADMIN, "admins", thanks())).await.unwrap();
        assert_eq!(response.status(), 201, "{}", body_json(&response));
    }

    #[tokio::test]
    async fn when_another_seller_or_a_shopper_replies_should_403_and_store_nothing() {
        let store = store();
        let other = handle(&store, reply(APPROVED, DEMO_SELLERS[1], "sellers", thanks())).await.unwrap();
        assert_eq!(other.status(), 403);
        let shopper = request("POST", "/v1/seller/reviews/{review_id}/reply", "/x")
            .path_param("review_id", APPROVED)
            .body("{not json")
            .caller(AUTHOR, "shoppers")
            .build();
        assert_eq!(handle(&store, shopper).await.unwrap().status(), 403);
        assert!(store.get_review(APPROVED).await.unwrap().unwrap().reply.is_none());
    }

    #[tokio::test]
    async fn when_the_reply_is_empty_or_too_long_should_422_naming_body() {
        for text in [String::new(), "   ".to_owned(), "x".repeat(MAX_REPLY_CHARS + 1)] {
            let response =
                handle(&store(), reply(APPROVED, DEMO_SELLERS[0], "sellers", json!({ "body": text }))).await.unwrap();
            let body = body_json(&response);
            assert_eq!(response.status(), 422, "{} chars: {body}", text.len());
            assert_eq!(
                (&body["error"]["code"], &body["error"]["field"]),
                (&json!("validation_failed"), &json!("body"))
            );
        }
    }

    #[tokio::test]
    async fn when_the_body_is_not_a_reply_should_400() {
        for body in [json!({}), json!({"body": "Thanks", "rating": 5}), json!({"body": 5})] {
            let response = handle(&store(), reply(APPROVED, DEMO_SELLERS[0], "sellers", body.clone())).await.unwrap();
            assert_eq!(response.status(), 400, "{body}");
            assert_eq!(body_json(&response)["error"]["code"], "malformed_json");
        }
    }

    #[tokio::test]
    async fn when_the_review_is_not_approved_unknown_or_malformed_should_404() {
        for id in [PENDING, "rev_01j9zq7c6m5v8k2r4t6y8w0zzz", "prd_demo-0001"] {
            let response = handle(&store(), reply(id, DEMO_SELLERS[0], "sellers", thanks())).await.unwrap();
            assert_eq!(response.status(), 404, "{id}: {}", body_json(&response));
        }
        let anonymous = request("POST", "/v1/seller/reviews/{review_id}/reply", "/x")
            .path_param("review_id", APPROVED)
            .json(&thanks())
            .build();
        assert_eq!(handle(&store(), anonymous).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/reply-review").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
