//! A signed-in customer reports an approved review, once: 204; 409 `already_reported` the second time, 403 for
//! the author's own review, 404 for one that is not approved. At the shop's threshold of reports the review
//! goes back to moderation (pending, off the product's rating).

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
        reviews::report(store, settings, &caller, &review_id, Utc::now()).await
    }
    .await;
    Ok(api::respond_no_content(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReviewReader;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};

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

    fn report(review_id: &str, by: &str) -> Request {
        request("POST", "/v1/reviews/{review_id}/reports", &format!("/v1/reviews/{review_id}/reports"))
            .path_param("review_id", review_id)
            .caller(by, "shoppers")
            .build()
    }

    #[tokio::test]
    async fn when_a_customer_reports_should_204_and_a_second_report_409() {
        let store = store();
        let response = handle(&store, ReviewSettings::default(), report(APPROVED, SHOPPER)).await.unwrap();
        assert_eq!(response.status(), 204, "{}", body_json(&response));
        assert_eq!(store.get_review(APPROVED).await.unwrap().unwrap().reports, 1);
        let again = handle(&store, ReviewSettings::default(), report(APPROVED, SHOPPER)).await.unwrap();
        assert_eq!(again.status(), 409);
        assert_eq!(body_json(&again)["error"]["code"], "already_reported");
        assert_eq!(store.get_review(APPROVED).await.unwrap().unwrap().reports, 1);
    }

    #[tokio::test]
    async fn when_the_reports_reach_the_threshold_should_send_it_back_to_moderation() {
        let store = store();
        let settings = ReviewSettings { report_threshold: 2, ..ReviewSettings::default() };
        assert_eq!(handle(&store, settings, report(APPROVED, SHOPPER)).await.unwrap().status(), 204);
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().count(), 1);
        assert_eq!(handle(&store, settings, report(APPROVED, "another-shopper")).await.unwrap().status(), 204);
        let review = store.get_review(APPROVED).await.unwrap().unwrap();
        assert_eq!((review.status, review.reports), (ReviewStatus::Pending, 2));
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().count(), 0);
        let hidden = handle(&store, settings, report(APPROVED, "a-third-shopper")).await.unwrap();
        assert_eq!(hidden.status(), 404);
    }

    #[tokio::test]
    async fn when_the_author_reports_their_own_review_should_403() {
        let response = handle(&store(), ReviewSettings::default(), report(APPROVED, AUTHOR)).await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(body_json(&response)["error"]["code"], "forbidden");
    }

    #[tokio::test]
    async fn when_the_review_is_not_approved_unknown_or_malformed_should_404() {
        for id in [PENDING, "rev_01j9zq7c6m5v8k2r4t6y8w0zzz", "rev_", "../x"] {
            let response = handle(&store(), ReviewSettings::default(), report(id, SHOPPER)).await.unwrap();
            assert_eq!(response.status(), 404, "{id}: {}", body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_nobody_is_signed_in_should_401() {
        let anonymous = request("POST", "/v1/reviews/{review_id}/reports", &format!("/v1/reviews/{APPROVED}/reports"))
            .path_param("review_id", APPROVED)
            .build();
        assert_eq!(handle(&store(), ReviewSettings::default(), anonymous).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/report-review").as_ref()) {
            let response = handle(&store(), ReviewSettings::default(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
