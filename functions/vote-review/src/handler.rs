//! A signed-in customer marks an approved review helpful, once: 200 with the public review and its new
//! `helpful` count; 409 `already_voted` the second time, 403 on the author's own review, 404 for one that is
//! not approved.

use chrono::Utc;
use commerce_app::ports::{ReviewReader, ReviewWriter};
use commerce_app::services::reviews;
use commerce_domain::ids::ReviewId;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl ReviewReader + ReviewWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let review_id: ReviewId = api::path(&req, "review_id")?;
        reviews::vote(store, &caller, &review_id, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReviewReader;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};
    use serde_json::json;

    const APPROVED: &str = "rev_01j9zq7c6m5v8k2r4t6y8w0a1b";
    const PENDING: &str = "rev_01j9zq7c6m5v8k2r4t6y8w0a1c";
    const AUTHOR: &str = "0f6b3a52-5c1e-4d8a-9a57-6f0d2c1b7e11";
    const SHOPPER: &str = "5b8e2c4a-3d1f-4e6a-9b7c-2f0e1d3c5a79";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        store.insert(fixture_review(APPROVED, "prd_demo-0001", DEMO_SELLERS[0], AUTHOR, 5, ReviewStatus::Approved));
        store.insert(fixture_review(PENDING, "prd_demo-0002", DEMO_SELLERS[0], AUTHOR, 2, ReviewStatus::Pending));
        store
    }

    fn vote(review_id: &str, by: &str) -> Request {
        request("POST", "/v1/reviews/{review_id}/votes", &format!("/v1/reviews/{review_id}/votes"))
            .path_param("review_id", review_id)
            .caller(by, "shoppers")
            .build()
    }

    #[tokio::test]
    async fn when_a_customer_votes_should_200_with_the_public_review_and_a_second_vote_409() {
        let store = store();
        let response = handle(&store, vote(APPROVED, SHOPPER)).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!((&body["review_id"], &body["helpful"]), (&json!(APPROVED), &json!(1)));
        for private in ["author_id", "seller_id", "status", "reports", "version"] {
            assert!(body.get(private).is_none(), "{private} is not public: {body}");
        }
        let again = handle(&store, vote(APPROVED, SHOPPER)).await.unwrap();
        assert_eq!(again.status(), 409);
        assert_eq!(body_json(&again)["error"]["code"], "already_voted");
        let other = handle(&store, vote(APPROVED, "another-shopper")).await.unwrap();
        assert_eq!(body_json(&other)["helpful"], 2);
    }

    #[tokio::test]
    async fn when_the_author_votes_on_their_own_review_should_403_and_count_nothing() {
        let store = store();
        let response = handle(&store, vote(APPROVED, AUTHOR)).await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(body_json(&response)["error"]["code"], "forbidden");
        assert_eq!(store.get_review(APPROVED).await.unwrap().unwrap().helpful, 0);
    }

    #[tokio::test]
    async fn when_the_review_is_not_approved_unknown_or_malformed_should_404() {
        for id in [PENDING, "rev_01j9zq7c6m5v8k2r4t6y8w0zzz", "review-1"] {
            let response = handle(&store(), vote(id, SHOPPER)).await.unwrap();
            assert_eq!(response.status(), 404, "{id}: {}", body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_nobody_is_signed_in_should_401() {
        let anonymous = request("POST", "/v1/reviews/{review_id}/votes", &format!("/v1/reviews/{APPROVED}/votes"))
            .path_param("review_id", APPROVED)
            .build();
        assert_eq!(handle(&store(), anonymous).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/vote-review").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
