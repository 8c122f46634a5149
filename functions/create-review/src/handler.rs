//! A signed-in customer reviews a public product once: 201 with the review (pending until moderated unless the
//! shop auto-approves), 403 `not_a_verified_buyer` without a delivered order line of it, 409 `review_exists`.

use chrono::Utc;
use commerce_app::ports::{ProductReader, PurchaseHistory, ReviewWriter};
use commerce_app::services::reviews::{self, Submission};
use commerce_domain::ids::ProductId;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<C, O, R>(deps: &Submission<C, O, R>, req: Request) -> Result<Response<Body>, Error>
where
    C: ProductReader,
    O: PurchaseHistory,
    R: ReviewWriter,
{
    let result = async {
        let caller = auth::caller(&req)?;
        let product_id: ProductId = api::path(&req, "product_id")?;
        let input = api::parse_json(&req)?;
        reviews::create_review(deps, &caller, &product_id, input, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_demo::catalog::FIRST_PRODUCT_ID;
    use commerce_domain::review::ReviewSettings;
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use commerce_testkit::reviews::InMemoryReviews;
    use serde_json::json;

    const SHOPPER: &str = "0f6b3a52-5c1e-4d8a-9a57-6f0d2c1b7e11";

    fn deps(settings: ReviewSettings) -> Submission<InMemoryCatalog, InMemoryReviews, InMemoryReviews> {
        let reviews = InMemoryReviews::new();
        reviews.deliver(SHOPPER, FIRST_PRODUCT_ID, Some("ord_01hzzzzzzzzzzzzzzzzzzzzzzz"));
        Submission { catalog: demo_store(), orders: reviews.clone(), reviews, settings }
    }

    fn post(product_id: &str, by: &str, body: serde_json::Value) -> Request {
        request("POST", "/v1/products/{product_id}/reviews", &format!("/v1/products/{product_id}/reviews"))
            .path_param("product_id", product_id)
            .json(&body)
            .caller(by, "shoppers")
            .build()
    }

    fn good() -> serde_json::Value {
        json!({"rating": 5, "title": "Great laptop", "body": "Fast and light.", "display_name": "Sam"})
    }

    #[tokio::test]
    async fn when_a_verified_buyer_reviews_should_201_pending_and_a_second_review_409() {
        let deps = deps(ReviewSettings::default());
        let response = handle(&deps, post(FIRST_PRODUCT_ID, SHOPPER, good())).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 201, "{body}");
        assert_eq!((&body["status"], &body["verified"], &body["rating"]), (&json!("pending"), &json!(true), &json!(5)));
        let again = handle(&deps, post(FIRST_PRODUCT_ID, SHOPPER, good())).await.unwrap();
        assert_eq!(again.status(), 409);
        assert_eq!(body_json(&again)["error"]["code"], "review_exists");
    }

    #[tokio::test]
    async fn when_the_customer_has_no_delivered_order_should_403_unless_the_shop_allows_it() {
        let refused = handle(&deps(ReviewSettings::default()), post(FIRST_PRODUCT_ID, "someone-else", good())).await;
        let refused = refused.unwrap();
        assert_eq!(refused.status(), 403);
        assert_eq!(body_json(&refused)["error"]["code"], "not_a_verified_buyer");
        let open = ReviewSettings { allow_unverified: true, auto_approve: true, ..ReviewSettings::default() };
        let response = handle(&deps(open), post(FIRST_PRODUCT_ID, "someone-else", good())).await.unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(
            (&body_json(&response)["verified"], &body_json(&response)["status"]),
            (&json!(false), &json!("approved"))
        );
    }

    #[tokio::test]
    async fn when_the_body_breaks_a_rule_or_the_product_is_unknown_should_4xx() {
        let deps = deps(ReviewSettings::default());
        let bad = handle(&deps, post(FIRST_PRODUCT_ID, SHOPPER, json!({"rating": 6, "title": "x", "body": "y"}))).await;
        let bad = bad.unwrap();
        assert_eq!((bad.status().as_u16(), body_json(&bad)["error"]["field"].clone()), (422, json!("rating")));
        let unknown = handle(&deps, post("prd_01hzzzzzzzzzzzzzzzzzzzzzzz", SHOPPER, good())).await.unwrap();
        assert_eq!(unknown.status(), 404);
        let anonymous = request("POST", "/v1/products/{product_id}/reviews", "/x")
            .path_param("product_id", FIRST_PRODUCT_ID)
            .json(&good())
            .build();
        assert_eq!(handle(&deps, anonymous).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-review").as_ref()) {
            let response = handle(&deps(ReviewSettings::default()), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
