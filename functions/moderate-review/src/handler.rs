//! An admin approves or rejects a review (the route's last segment says which): 200 with the whole review.
//! Approving counts it in its product's rating and clears its reports; deciding again changes nothing.

use chrono::Utc;
use commerce_app::ports::{ReviewReader, ReviewWriter};
use commerce_app::services::reviews;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::ReviewId;
use commerce_domain::review::Moderation;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl ReviewReader + ReviewWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::admin(&req)?;
        let review_id: ReviewId = api::path(&req, "review_id")?;
        reviews::moderate(store, &caller, &review_id, decision(&req)?, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

/// The decision the request's path names.
fn decision(req: &Request) -> Result<Moderation> {
    let path = req.uri().path().trim_end_matches('/');
    if path.ends_with("/approve") {
        Ok(Moderation::Approve)
    } else if path.ends_with("/reject") {
        Ok(Moderation::Reject)
    } else {
        Err(DomainError::not_found("route"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReviewReader;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};
    use serde_json::json;

    const PENDING: &str = "rev_01j9zq7c6m5v8k2r4t6y8w0a1c";
    const AUTHOR: &str = "0f6b3a52-5c1e-4d8a-9a57-6f0d2c1b7e11";
    const ADMIN: &str = "a1d3f5b7-0c2e-4a6b-8d9f-1e3c5a7b9d0f";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        let mut pending = fixture_review(PENDING, "prd_demo-0001", DEMO_SELLERS[0], AUTHOR, 4, ReviewStatus::Pending);
        pending.reports = 2;
        store.insert(pending);
        store
    }

    fn post(review_id: &str, decision: &str, by: &str, groups: &str) -> Request {
        let route = format!("/v1/admin/reviews/{{review_id}}/{decision}");
        request("POST", &route, &format!("/v1/admin/reviews/{review_id}/{decision}"))
            .path_param("review_id", review_id)
            .caller(by, groups)
            .build()
    }

    #[tokio::test]
    async fn when_an_admin_approves_a_pending_review_should_200_with_it_counted_and_its_reports_cleared() {
        let store = store();
        let response = handle(&store, post(PENDING, "approve", ADMIN, "admins")).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!(
            (&body["review_id"], &body["status"], &body["reports"]),
            (&json!(PENDING), &json!("approved"), &json!(0))
        );
        assert_eq!((&body["author_id"], &body["version"]), (&json!(AUTHOR), &json!(2)));
        let rating = store.rating("prd_demo-0001").await.unwrap();
        assert_eq!(rating.stars, [0, 0, 0, 1, 0]);
    }

    #[tokio::test]
    async fn when_an_admin_rejects_an_approved_review_should_200_and_take_it_off_the_rating() {
        let store = store();
        handle(&store, post(PENDING, "approve", ADMIN, "admins")).await.unwrap();
        let response = handle(&store, post(PENDING, "reject", ADMIN, "admins")).await.unwrap();
        assert_eq!((response.status().as_u16(), body_json(&response)["status"].clone()), (200, json!("rejected")));
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().count(), 0);
    }

    #[tokio::test]
    async fn when_the_review_already_has_the_decision_should_200_unchanged() {
        let store = store();
        let response = handle(&store, post(PENDING, "reject", ADMIN, "admins")).await.unwrap();
        assert_eq!(body_json(&response)["version"], 2);
        let again = handle(&store, post(PENDING, "reject", ADMIN, "admins")).await.unwrap();
        assert_eq!((again.status().as_u16(), body_json(&again)["version"].clone()), (200, json!(2)));
    }

    #[tokio::test]
    async fn when_a_seller_or_a_shopper_moderates_should_403_and_change_nothing() {
        let store = store();
        for (by, groups) in [(DEMO_SELLERS[0], "sellers"), (AUTHOR, "shoppers")] {
            let response = handle(&store, post(PENDING, "approve", by, groups)).await.unwrap();
            assert_eq!(response.status(), 403, "{groups}");
            assert_eq!(body_json(&response)["error"]["code"], "forbidden");
        }
        let anonymous =
            request("POST", "/v1/admin/reviews/{review_id}/approve", &format!("/v1/admin/reviews/{PENDING}/approve"))
                .path_param("review_id", PENDING)
                .build();
        assert_eq!(handle(&store, anonymous).await.unwrap().status(), 401);
        assert_eq!(store.get_review(PENDING).await.unwrap().unwrap().status, ReviewStatus::Pending);
    }

    #[tokio::test]
    async fn when_the_review_is_unknown_or_the_id_malformed_should_404() {
        let store = store();
        for id in ["rev_01j9zq7c6m5v8k2r4t6y8w0zzz", "not-a-review", "prd_demo-0001"] {
            let response = handle(&store, post(id, "approve", ADMIN, "admins")).await.unwrap();
            assert_eq!(response.status(), 404, "{id}");
            assert_eq!(body_json(&response)["error"]["code"], "not_found");
        }
    }

    #[tokio::test]
    async fn when_the_path_names_no_decision_should_404() {
        let response = handle(&store(), post(PENDING, "archive", ADMIN, "admins")).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/moderate-review").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
