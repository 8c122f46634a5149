//! Makes `count` single-use codes of a promotion the caller manages (`{"count", "prefix"}`), answering 201 with
//! `{"codes": [...]}`: the only time the codes are listed.

use commerce_app::ports::{PromotionReader, PromotionWriter};
use commerce_app::services::promotions;
use commerce_domain::ids::PromotionId;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl PromotionReader + PromotionWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let scope = promotions::manager_scope(&caller, api::is_admin_route(&req))?;
        let promotion_id: PromotionId = api::path(&req, "promotion_id")?;
        let body = api::parse_json(&req)?;
        promotions::create_codes(store, &scope, &promotion_id, body).await
    }
    .await
    .map(|codes| serde_json::json!({ "codes": codes }));
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::promotions::{sample_promotions, PLATFORM_PROMOTION_ID, SELLER_PROMOTION_ID};
    use serde_json::json;

    fn post(id: &str, body: serde_json::Value) -> commerce_testkit::http::RequestBuilder {
        request("POST", "/v1/admin/promotions/{promotion_id}/codes", &format!("/v1/admin/promotions/{id}/codes"))
            .path_param("promotion_id", id)
            .json(&body)
    }

    #[tokio::test]
    async fn an_admin_gets_distinct_single_use_codes_with_the_prefix() {
        let store = sample_promotions();
        let req = post(PLATFORM_PROMOTION_ID, json!({"count": 25, "prefix": "vip-"})).caller("admin-1", "admins");
        let response = handle(&store, req.build()).await.unwrap();
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let codes: Vec<String> = serde_json::from_value(body_json(&response)["codes"].clone()).unwrap();
        assert_eq!(codes.len(), 25);
        assert!(codes.iter().all(|c| c.starts_with("VIP-") && c.len() == 14));
        let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), 25);
        let record = commerce_app::ports::PromotionReader::find_code(&store, &codes[0]).await.unwrap().unwrap();
        assert!(record.single_use && record.promotion_id == PLATFORM_PROMOTION_ID);
    }

    #[tokio::test]
    async fn too_many_at_once_is_422_and_a_seller_cannot_reach_a_platform_promotion() {
        let store = sample_promotions();
        let response =
            handle(&store, post(PLATFORM_PROMOTION_ID, json!({"count": 1001})).caller("admin-1", "admins").build())
                .await
                .unwrap();
        assert_eq!(response.status(), 422);
        let req = request(
            "POST",
            "/v1/seller/promotions/{promotion_id}/codes",
            &format!("/v1/seller/promotions/{PLATFORM_PROMOTION_ID}/codes"),
        )
        .path_param("promotion_id", PLATFORM_PROMOTION_ID)
        .json(&json!({"count": 1}));
        assert_eq!(handle(&store, req.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap().status(), 404);
        let _ = SELLER_PROMOTION_ID;
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-promotion-codes").as_ref())
        {
            let response = handle(&sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
