//! Lists the platform's promotions (admin route) or the calling seller's (seller route), newest first, as
//! `{"items": [...], "next_cursor"}`.

use commerce_app::ports::PromotionWriter;
use commerce_app::services::promotions;
use commerce_domain::catalog::PageLimit;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl PromotionWriter, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let scope = promotions::manager_scope(&caller, api::is_admin_route(&req))?;
        let limit = PageLimit::parse(api::query_param(&req, "limit").as_deref())?;
        let cursor = api::query_param(&req, "cursor");
        promotions::list_promotions(store, &scope, limit, cursor.as_deref()).await
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

    fn ids(response: &Response<Body>) -> Vec<String> {
        let body = body_json(response);
        body["items"].as_array().unwrap().iter().map(|p| p["promotion_id"].as_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn each_manager_lists_only_their_own() {
        let store = sample_promotions();
        let admin = request("GET", "/v1/admin/promotions", "/v1/admin/promotions").caller("admin-1", "admins");
        let response = handle(&store, admin.build()).await.unwrap();
        assert_eq!(ids(&response), [PLATFORM_PROMOTION_ID]);
        let seller = request("GET", "/v1/seller/promotions", "/v1/seller/promotions");
        let response = handle(&store, seller.clone().caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(ids(&response), [SELLER_PROMOTION_ID]);
        let response = handle(&store, seller.caller(DEMO_SELLERS[1], "sellers").build()).await.unwrap();
        assert!(ids(&response).is_empty());
        let _ = json!(null);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-promotions").as_ref()) {
            let response = handle(&sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
