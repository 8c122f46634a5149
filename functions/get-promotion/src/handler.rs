//! Reads one promotion with `used`, `held` and `remaining`, exact at the read (every counter shard read
//! consistently). A seller reaches only their own (another's, or a platform one, is 404); admins reach all.

use commerce_app::ports::PromotionReader;
use commerce_app::services::promotions;
use commerce_domain::ids::PromotionId;
use commerce_lambda::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl PromotionReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let scope = promotions::manager_scope(&caller, api::is_admin_route(&req))?;
        let promotion_id: PromotionId = api::path(&req, "promotion_id")?;
        promotions::get_promotion(store, &scope, &promotion_id).await
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

    fn get(route: &str, id: &str) -> commerce_testkit::http::RequestBuilder {
        request("GET", &format!("{route}/{{promotion_id}}"), &format!("{route}/{id}")).path_param("promotion_id", id)
    }

    #[tokio::test]
    async fn a_seller_reads_their_own_and_nobody_else_s() {
        let store = sample_promotions();
        let response = handle(
            &store,
            get("/v1/seller/promotions", SELLER_PROMOTION_ID).caller(DEMO_SELLERS[0], "sellers").build(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!((&body_json(&response)["used"], &body_json(&response)["remaining"]), (&json!(0), &json!(50)));
        for (id, seller) in [(SELLER_PROMOTION_ID, DEMO_SELLERS[1]), (PLATFORM_PROMOTION_ID, DEMO_SELLERS[0])] {
            let response =
                handle(&store, get("/v1/seller/promotions", id).caller(seller, "sellers").build()).await.unwrap();
            assert_eq!(response.status(), 404, "{id} read by {seller}");
        }
        let response =
            handle(&store, get("/v1/admin/promotions", SELLER_PROMOTION_ID).caller("admin-1", "admins").build())
                .await
                .unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-promotion").as_ref()) {
            let response = handle(&sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
