//! Parses the SKU, the warehouse and `{"on_hand": n, "safety_stock"?: n}`, sets the stock, answers 200 with
//! the warehouse's stock of the SKU.

use commerce_app::ports::{SkuCatalog, StockWriter, WarehouseReader};
use commerce_app::services::inventory;
use commerce_domain::ids::Sku;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    catalog: &impl SkuCatalog,
    store: &(impl WarehouseReader + StockWriter),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let sku: Sku = api::path(&req, "sku")?;
        let warehouse_id = api::path_param(&req, "warehouse_id")?;
        let body = api::parse_json(&req)?;
        inventory::set_stock(&caller, catalog, store, store, &sku, &warehouse_id, body).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::StockReader;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::inventory::InMemoryInventory;
    use serde_json::json;

    const ROUTE: &str = "/v1/seller/inventory/{sku}/{warehouse_id}";
    const SKU: &str = "LAP-0001-16GB-512GB";

    fn put(sku: &str, warehouse: &str, body: serde_json::Value) -> commerce_testkit::http::RequestBuilder {
        request("PUT", ROUTE, &format!("/v1/seller/inventory/{sku}/{warehouse}"))
            .path_param("sku", sku)
            .path_param("warehouse_id", warehouse)
            .json(&body)
    }

    #[tokio::test]
    async fn when_owner_sets_stock_should_200_and_store_it() {
        let inventory = InMemoryInventory::demo();
        let req =
            put(SKU, "wh_east", json!({"on_hand": 42, "safety_stock": 2})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &inventory, req).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        assert_eq!(body_json(&response)["available"], 40);
        let levels = inventory.stock_levels(&[SKU.to_string()]).await.unwrap().remove(SKU).unwrap();
        assert_eq!(levels.iter().find(|l| l.warehouse_id == "wh_east").unwrap().on_hand, 42);
        assert!(inventory.ledger().violations().is_empty());
    }

    #[tokio::test]
    async fn when_another_seller_sets_stock_should_403() {
        let req = put(SKU, "wh_east", json!({"on_hand": 1})).caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_shopper_sets_stock_should_403() {
        let req = put(SKU, "wh_east", json!({"on_hand": 1})).caller("someone", "shoppers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_shopper_sends_any_body_should_403_before_it_is_read() {
        for body in ["{not json", r#"{"on_hand": -9223372036854775808}"#] {
            let req = put(SKU, "wh_east", json!({})).body(body).caller("someone", "shoppers").build();
            let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
            assert_eq!(response.status(), 403, "{body}: {}", body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_warehouse_is_unknown_should_404() {
        let req = put(SKU, "wh_north", json!({"on_hand": 1})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_on_hand_is_negative_should_422() {
        let req = put(SKU, "wh_east", json!({"on_hand": -1})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "on_hand");
    }

    #[tokio::test]
    async fn when_sku_is_a_bundle_should_422() {
        let req = put("KIT-0096-BUNDLE", "wh_east", json!({"on_hand": 5})).caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 422);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/put-stock").as_ref()) {
            let response = handle(&demo_store(), &InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
