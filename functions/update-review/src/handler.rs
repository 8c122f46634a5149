//! The author edits their review: 200 with it (pending again unless the shop auto-approves); another user's
//! review is 404.

use chrono::Utc;
use commerce_app::ports::{ReviewReader, ReviewWriter};
use commerce_app::services::reviews;
use commerce_domain::ids::ReviewId;
use commerce_domain::review::ReviewSettings;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl ReviewReader + ReviewWriter),
    settings: ReviewSettings,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let review_id: ReviewId = api::path(&req, "review_id")?;
        let patch = api::parse_json(&req)?;
        reviews::update_review(store, settings, &caller, &review_id, patch, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReviewReader;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};
    use serde_json::json;

    const REVIEW: &str = "rev_01j00000000000000000000001";
    const AUTHOR: &str = "0f6b3a52-5c1e-4d8a-9a57-6f0d2c1b7e11";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        store.insert(fixture_review(REVIEW, "prd_demo-0001", "seller-1", AUTHOR, 2, ReviewStatus::Approved));
        store
    }

    fn patch(by: &str, body: serde_json::Value) -> Request {
        request("PATCH", "/v1/reviews/{review_id}", &format!("/v1/reviews/{REVIEW}"))
            .path_param("review_id", REVIEW)
            .json(&body)
            .caller(by, "shoppers")
            .build()
    }

    #[tokio::test]
    async fn when_the_author_edits_should_200_pending_and_the_aggregate_drops_it_until_approved_again() {
        let store = store();
        let response = handle(&store, ReviewSettings::default(), patch(AUTHOR, json!({"rating": 5}))).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!((&body["rating"], &body["status"], &body["version"]), (&json!(5), &json!("pending"), &json!(2)));
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().count(), 0);
    }

    #[tokio::test]
    async fn when_the_shop_auto_approves_an_edit_moves_the_star() {
        let store = store();
        let auto = ReviewSettings { auto_approve: true, ..ReviewSettings::default() };
        assert_eq!(handle(&store, auto, patch(AUTHOR, json!({"rating": 5}))).await.unwrap().status(), 200);
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().stars, [0, 0, 0, 0, 1]);
    }

    #[tokio::test]
    async fn when_another_user_edits_or_a_value_breaks_a_rule_should_404_or_422() {
        let store = store();
        let other = handle(&store, ReviewSettings::default(), patch("someone-else", json!({"rating": 1}))).await;
        assert_eq!(other.unwrap().status(), 404);
        let bad = handle(&store, ReviewSettings::default(), patch(AUTHOR, json!({"title": ""}))).await.unwrap();
        assert_eq!((bad.status().as_u16(), body_json(&bad)["error"]["field"].clone()), (422, json!("title")));
        let unknown = handle(&store, ReviewSettings::default(), patch(AUTHOR, json!({"stars": 1}))).await.unwrap();
        assert_eq!(unknown.status(), 400);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/update-review").as_ref()) {
            let response = handle(&store(), ReviewSettings::default(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
