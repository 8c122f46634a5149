//! The author (or an admin) deletes a review: 204; the product's aggregate loses it if it counted. Another
//! user's review is 404.

use commerce_app::ports::{ReviewReader, ReviewWriter};
use commerce_app::services::reviews;
use commerce_domain::ids::ReviewId;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl ReviewReader + ReviewWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let review_id: ReviewId = api::path(&req, "review_id")?;
        reviews::delete_review(store, &caller, &review_id).await
    }
    .await;
    Ok(api::respond_no_content(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReviewReader;
    use commerce_domain::review::ReviewStatus;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::reviews::{fixture_review, InMemoryReviews};

    const REVIEW: &str = "rev_01j00000000000000000000001";
    const AUTHOR: &str = "0f6b3a52-5c1e-4d8a-9a57-6f0d2c1b7e11";

    fn store() -> InMemoryReviews {
        let store = InMemoryReviews::new();
        store.insert(fixture_review(REVIEW, "prd_demo-0001", "seller-1", AUTHOR, 4, ReviewStatus::Approved));
        store
    }

    fn delete(by: &str, groups: &str) -> Request {
        request("DELETE", "/v1/reviews/{review_id}", &format!("/v1/reviews/{REVIEW}"))
            .path_param("review_id", REVIEW)
            .caller(by, groups)
            .build()
    }

    #[tokio::test]
    async fn when_the_author_deletes_should_204_and_the_aggregate_loses_it() {
        let store = store();
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().count(), 1);
        assert_eq!(handle(&store, delete(AUTHOR, "shoppers")).await.unwrap().status(), 204);
        assert_eq!(store.rating("prd_demo-0001").await.unwrap().count(), 0);
        assert_eq!(handle(&store, delete(AUTHOR, "shoppers")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_another_shopper_deletes_should_404_and_an_admin_may() {
        let store = store();
        assert_eq!(handle(&store, delete("someone-else", "shoppers")).await.unwrap().status(), 404);
        assert_eq!(handle(&store, delete("admin-1", "admins")).await.unwrap().status(), 204);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/delete-review").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
