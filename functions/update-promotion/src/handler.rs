//! Applies a partial update to a promotion the caller manages; `If-Match: "<version>"` makes it conditional
//! (409 `version_conflict` when stale). A raised or lowered usage limit moves the uses left with it.

use chrono::Utc;
use commerce_app::ports::{PromotionReader, PromotionWriter};
use commerce_app::services::{catalog::parse_if_match, promotions};
use commerce_domain::ids::PromotionId;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl PromotionReader + PromotionWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let scope = promotions::manager_scope(&caller, api::is_admin_route(&req))?;
        let promotion_id: PromotionId = api::path(&req, "promotion_id")?;
        let expected = parse_if_match(api::header(&req, "if-match").as_deref())?;
        let patch = api::parse_json(&req)?;
        promotions::update_promotion(store, &scope, &promotion_id, patch, expected, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::promotions::{sample_promotions, PLATFORM_PROMOTION_ID, SELLER_PROMOTION_ID};
    use serde_json::json;

    fn patch(id: &str, body: serde_json::Value) -> commerce_testkit::http::RequestBuilder {
        request("PATCH", "/v1/seller/promotions/{promotion_id}", &format!("/v1/seller/promotions/{id}"))
            .path_param("promotion_id", id)
            .json(&body)
    }

    #[tokio::test]
    async fn a_stale_if_match_is_409_and_a_fresh_one_changes_it() {
        let store = sample_promotions();
        let stale = patch(SELLER_PROMOTION_ID, json!({"name": "Later"})).header("if-match", "\"7\"");
        let response = handle(&store, stale.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "version_conflict");
        let fresh = patch(SELLER_PROMOTION_ID, json!({"name": "Later", "usage_limit": 60})).header("if-match", "\"1\"");
        let response = handle(&store, fresh.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!((&body["name"], &body["version"], &body["remaining"]), (&json!("Later"), &json!(2), &json!(60)));
    }

    #[tokio::test]
    async fn another_seller_gets_404_and_unlimited_cannot_become_limited() {
        let store = sample_promotions();
        let response = handle(
            &store,
            patch(SELLER_PROMOTION_ID, json!({"priority": 3})).caller(DEMO_SELLERS[1], "sellers").build(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 404);
        let req = request(
            "PATCH",
            "/v1/admin/promotions/{promotion_id}",
            &format!("/v1/admin/promotions/{PLATFORM_PROMOTION_ID}"),
        )
        .path_param("promotion_id", PLATFORM_PROMOTION_ID)
        .json(&json!({"usage_limit": 5}));
        let response = handle(&store, req.caller("admin-1", "admins").build()).await.unwrap();
        assert_eq!(response.status(), 422, "{}", body_json(&response));
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/update-promotion").as_ref()) {
            let response = handle(&sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
