//! Applies a partial update to a seller's product; `If-Match: "<version>"` makes it conditional.

use commerce_app::ports::{CategoryReader, ProductReader, ProductUpdater, SkuCatalog};
use commerce_app::services::catalog;
use commerce_domain::ids::ProductId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl ProductReader + CategoryReader + SkuCatalog + ProductUpdater),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let product_id: ProductId = api::path(&req, "product_id")?;
        let expected_version = catalog::parse_if_match(api::header(&req, "if-match").as_deref())?;
        let patch = api::parse_json(&req)?;
        catalog::update_product(store, &caller, &product_id, patch, expected_version).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_demo::catalog::FIRST_PRODUCT_ID;
    use commerce_domain::ids::ProductId;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use serde_json::json;

    fn patch(id: &str, body: serde_json::Value) -> RequestBuilder {
        request("PATCH", "/v1/seller/products/{product_id}", &format!("/v1/seller/products/{id}"))
            .path_param("product_id", id)
            .json(&body)
    }

    #[tokio::test]
    async fn when_owner_changes_title_should_200_and_bump_version() {
        let store = demo_store();
        let req =
            patch(FIRST_PRODUCT_ID, json!({"title": "Renamed laptop"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["title"], "Renamed laptop");
        assert_eq!(body["version"], 2);
        assert_eq!(store.stored(FIRST_PRODUCT_ID).unwrap().title, "Renamed laptop");
    }

    #[tokio::test]
    async fn when_a_variant_price_becomes_zero_should_422_and_keep_the_product() {
        let store = demo_store();
        let mut variants = serde_json::to_value(&store.stored(FIRST_PRODUCT_ID).unwrap().variants).unwrap();
        variants[0]["price"]["amount"] = json!(0);
        let req = patch(FIRST_PRODUCT_ID, json!({"variants": variants})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 422, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["field"], "variants[0].price.amount");
        assert_eq!(store.stored(FIRST_PRODUCT_ID).unwrap().version, 1);
    }

    #[tokio::test]
    async fn when_other_seller_updates_should_403() {
        let store = demo_store();
        let req = patch(FIRST_PRODUCT_ID, json!({"title": "Mine now"})).caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(store.stored(FIRST_PRODUCT_ID).unwrap().version, 1);
    }

    #[tokio::test]
    async fn when_a_bundle_is_changed_to_name_another_sellers_sku_should_422_component_not_owned() {
        let store = demo_store();
        let own = store.stored("prd_demo-0004").unwrap();
        assert_eq!(own.seller_id, DEMO_SELLERS[1]);
        let variants = json!([{"sku": own.variants[0].sku, "price": {"amount": 100, "currency": "USD"},
                               "components": [{"sku": "LAP-0001-8GB-256GB", "quantity": 1}]}]);
        let req = patch("prd_demo-0004", json!({"variants": variants})).caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 422, "{}", body_json(&response));
        let error = &body_json(&response)["error"];
        assert_eq!(
            (&error["code"], &error["field"]),
            (&json!("component_not_owned"), &json!("variants[0].components[0].sku"))
        );
        assert_eq!(store.stored("prd_demo-0004").unwrap().version, 1, "nothing written");
    }

    #[tokio::test]
    async fn when_a_variant_takes_a_deleted_sku_of_another_seller_should_409_sku_taken() {
        let store = demo_store();
        let owner = auth::Caller { user_id: DEMO_SELLERS[0].into(), email: None, roles: vec![auth::Role::Seller] };
        catalog::delete_product(&store, &store, &owner, &ProductId::parse(FIRST_PRODUCT_ID).unwrap()).await.unwrap();
        let variants = json!([{"sku": "LAP-0001-8GB-256GB", "price": {"amount": 100, "currency": "USD"}}]);
        let req = patch("prd_demo-0004", json!({"variants": variants})).caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 409, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["code"], "sku_taken");
        assert_eq!(store.stored("prd_demo-0004").unwrap().version, 1, "nothing written");
    }

    #[tokio::test]
    async fn when_admin_updates_any_product_should_200() {
        let req = patch(FIRST_PRODUCT_ID, json!({"status": "archived"})).caller("admin-1", "admins").build();
        let response = handle(&demo_store(), req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["status"], "archived");
    }

    #[tokio::test]
    async fn when_if_match_is_stale_should_409_version_conflict() {
        let store = demo_store();
        let req = patch(FIRST_PRODUCT_ID, json!({"title": "A"}))
            .header("If-Match", "\"7\"")
            .caller(DEMO_SELLERS[0], "sellers")
            .build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "version_conflict");
        let current = patch(FIRST_PRODUCT_ID, json!({"title": "B"}))
            .header("If-Match", "\"1\"")
            .caller(DEMO_SELLERS[0], "sellers")
            .build();
        assert_eq!(handle(&store, current).await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn when_product_is_unknown_should_404() {
        let req = patch("prd_unknown", json!({"title": "A"})).caller(DEMO_SELLERS[0], "sellers").build();
        assert_eq!(handle(&demo_store(), req).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_patch_has_unknown_field_should_400() {
        let req = patch(FIRST_PRODUCT_ID, json!({"titel": "typo"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), req).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["code"], "malformed_json");
    }

    #[tokio::test]
    async fn when_variants_replace_with_taken_sku_should_409() {
        let store = demo_store();
        let other_sku = store.stored("prd_demo-0002").unwrap().variants[0].sku.clone();
        let body = json!({"variants": [{"sku": other_sku, "price": {"amount": 100, "currency": "USD"}}]});
        let response = handle(&store, patch(FIRST_PRODUCT_ID, body).caller("admin-1", "admins").build()).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "sku_taken");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/update-product").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
