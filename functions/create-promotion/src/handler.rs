//! An admin creates a platform promotion (the admin route), a seller a promotion limited to their own products
//! (the seller route); answers 201 with it, its class and its uses.

use chrono::Utc;
use commerce_app::ports::PromotionWriter;
use commerce_app::services::promotions;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl PromotionWriter, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let scope = promotions::manager_scope(&caller, api::is_admin_route(&req))?;
        let input = api::parse_json(&req)?;
        promotions::create_promotion(store, scope, input, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::promotions::{sample_promotions, PLATFORM_PROMOTION_ID, SELLER_PROMOTION_ID};
    use serde_json::json;

    fn summer(code: &str) -> serde_json::Value {
        json!({"name": "Summer", "code": code, "kind": "percent", "value": {"percent_bp": 1000},
               "starts_at": "2026-01-01T00:00:00Z", "usage_limit": 100, "per_customer_limit": 1,
               "combines_with": ["shipping"]})
    }

    #[tokio::test]
    async fn when_an_admin_creates_a_code_promotion_should_201_with_its_uses() {
        let store = sample_promotions();
        let req = request("POST", "/v1/admin/promotions", "/v1/admin/promotions").json(&summer("summer10"));
        let response = handle(&store, req.caller("admin-1", "admins").build()).await.unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 201, "{body}");
        assert!(body["promotion_id"].as_str().unwrap().starts_with("prm_"));
        assert_eq!(
            (&body["code"], &body["class"], &body["scope"]["type"]),
            (&json!("SUMMER10"), &json!("order"), &json!("platform"))
        );
        assert_eq!((&body["used"], &body["held"], &body["remaining"]), (&json!(0), &json!(0), &json!(100)));
    }

    #[tokio::test]
    async fn when_a_seller_creates_one_it_is_theirs_and_a_taken_code_is_409() {
        let store = sample_promotions();
        let req = request("POST", "/v1/seller/promotions", "/v1/seller/promotions").json(&summer("MINE-1"));
        let response = handle(&store, req.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(body_json(&response)["scope"], json!({"type": "seller", "seller_id": DEMO_SELLERS[0]}));
        let again = request("POST", "/v1/seller/promotions", "/v1/seller/promotions").json(&summer("mine-1"));
        let response = handle(&store, again.caller(DEMO_SELLERS[1], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "promotion_code_taken");
    }

    #[tokio::test]
    async fn when_a_seller_uses_the_admin_route_or_a_shopper_either_should_403() {
        let store = sample_promotions();
        let req = request("POST", "/v1/admin/promotions", "/v1/admin/promotions").json(&summer("X-1"));
        assert_eq!(handle(&store, req.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap().status(), 403);
        let req = request("POST", "/v1/seller/promotions", "/v1/seller/promotions").body("{not json");
        assert_eq!(handle(&store, req.caller("shopper-1", "shoppers").build()).await.unwrap().status(), 403);
        let _ = (PLATFORM_PROMOTION_ID, SELLER_PROMOTION_ID);
    }

    #[tokio::test]
    async fn when_a_value_breaks_a_rule_should_422_naming_the_field() {
        let cases =
            [("/value/percent_bp", json!(10_001), "value.percent_bp"), ("/usage_limit", json!(0), "usage_limit")];
        for (pointer, value, field) in cases {
            let mut body = summer("RULES-1");
            *body.pointer_mut(pointer).unwrap() = value;
            let req = request("POST", "/v1/admin/promotions", "/v1/admin/promotions").json(&body);
            let response = handle(&sample_promotions(), req.caller("admin-1", "admins").build()).await.unwrap();
            assert_eq!(response.status(), 422, "{pointer}: {}", body_json(&response));
            assert_eq!(body_json(&response)["error"]["field"], field);
        }
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-promotion").as_ref()) {
            let response = handle(&sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
