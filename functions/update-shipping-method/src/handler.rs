//! Applies a partial update to one of the caller's shipping methods (an admin may pass `seller_id`);
//! `If-Match: "<version>"` makes it conditional. Another seller's method is 404.

use chrono::Utc;
use commerce_app::ports::{ShippingMethodReader, ShippingMethodWriter};
use commerce_app::services::shipping_methods;
use commerce_domain::ids::ShippingMethodId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl ShippingMethodReader + ShippingMethodWriter),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let method_id: ShippingMethodId = api::path(&req, "method_id")?;
        let seller_id = api::query_param(&req, "seller_id");
        let expected_version = shipping_methods::parse_if_match(api::header(&req, "if-match").as_deref())?;
        let patch = api::parse_json(&req)?;
        let (seller_id, now) = (seller_id.as_deref(), Utc::now());
        shipping_methods::update_shipping_method(store, &caller, seller_id, &method_id, patch, expected_version, now)
            .await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::shipping_config::{
        sample_shipping, EXPRESS_METHOD_ID, OTHER_SELLER_METHOD_ID, STANDARD_METHOD_ID,
    };
    use serde_json::json;

    fn patch(id: &str, body: serde_json::Value) -> RequestBuilder {
        request("PATCH", "/v1/seller/shipping/methods/{method_id}", &format!("/v1/seller/shipping/methods/{id}"))
            .path_param("method_id", id)
            .json(&body)
    }

    #[tokio::test]
    async fn when_seller_changes_their_method_should_200_with_the_next_version() {
        let store = sample_shipping();
        let body = json!({"name": "Ground", "countries": ["US"], "rate": {"type": "flat", "amount": {"amount": 0, "currency": "USD"}}});
        let req = patch(STANDARD_METHOD_ID, body).header("If-Match", "\"1\"").caller(DEMO_SELLERS[0], "sellers");
        let response = handle(&store, req.build()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        let body = body_json(&response);
        assert_eq!(
            (&body["name"], &body["version"], &body["countries"]),
            (&json!("Ground"), &json!(2), &json!(["US"]))
        );
        assert_eq!(store.stored_method(STANDARD_METHOD_ID).unwrap().version, 2);
    }

    #[tokio::test]
    async fn when_if_match_is_stale_should_409_and_change_nothing() {
        let store = sample_shipping();
        let req = patch(STANDARD_METHOD_ID, json!({"max_days": 9})).header("If-Match", "\"4\"");
        let response = handle(&store, req.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "version_conflict");
        assert_eq!(store.stored_method(STANDARD_METHOD_ID).unwrap().version, 1);
    }

    #[tokio::test]
    async fn when_if_match_is_not_a_version_should_400() {
        let req = patch(STANDARD_METHOD_ID, json!({"max_days": 9})).header("If-Match", "*");
        let response = handle(&sample_shipping(), req.caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["field"], "If-Match");
    }

    #[tokio::test]
    async fn when_the_method_is_another_sellers_should_404_and_stay_as_it_was() {
        let store = sample_shipping();
        let req = patch(OTHER_SELLER_METHOD_ID, json!({"name": "Mine"})).caller(DEMO_SELLERS[0], "sellers").build();
        assert_eq!(handle(&store, req).await.unwrap().status(), 404);
        assert_eq!(store.stored_method(OTHER_SELLER_METHOD_ID).unwrap().name, "Standard");
    }

    #[tokio::test]
    async fn when_a_rename_overlaps_another_method_should_409() {
        let req = patch(EXPRESS_METHOD_ID, json!({"name": "standard"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&sample_shipping(), req).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "shipping_method_overlap");
    }

    #[tokio::test]
    async fn when_the_patch_is_empty_or_breaks_a_rule_should_422_naming_the_field() {
        for (body, field) in
            [(json!({}), "body"), (json!({"min_days": 6}), "max_days"), (json!({"countries": []}), "countries")]
        {
            let req = patch(STANDARD_METHOD_ID, body).caller(DEMO_SELLERS[0], "sellers").build();
            let response = handle(&sample_shipping(), req).await.unwrap();
            assert_eq!(response.status(), 422, "{field}");
            assert_eq!(body_json(&response)["error"]["field"], field);
        }
    }

    #[tokio::test]
    async fn when_shopper_patches_should_403() {
        let req = patch(STANDARD_METHOD_ID, json!({"name": "X"})).caller("shopper-1", "shoppers").build();
        assert_eq!(handle(&sample_shipping(), req).await.unwrap().status(), 403);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/update-shipping-method").as_ref())
        {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
