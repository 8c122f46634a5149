//! Parses the SKU, the warehouse, the required `Idempotency-Key` and `{"delta": n, "reason": "receipt" |
//! "correction" | "damage"}`, applies the adjustment exactly once per key (atomically with the key's record),
//! answers 200 with the warehouse's stock of the SKU; a retry gets the first answer, the key with another
//! adjustment 422.

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
        let key = api::header(&req, "idempotency-key");
        inventory::adjust_stock(&caller, catalog, store, &sku, &warehouse_id, body, key.as_deref()).await
    }
    .await;
    Ok(commerce_lambda::inventory::adjusted(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::inventory::InMemoryInventory;
    use serde_json::json;

    const ROUTE: &str = "/v1/seller/inventory/{sku}/{warehouse_id}/adjustments";
    const SKU: &str = "LAP-0001-16GB-512GB";

    fn post(body: serde_json::Value) -> RequestBuilder {
        request("POST", ROUTE, &format!("/v1/seller/inventory/{SKU}/wh_east/adjustments"))
            .path_param("sku", SKU)
            .path_param("warehouse_id", "wh_east")
            .header("idempotency-key", "key-1")
            .json(&body)
    }

    #[tokio::test]
    async fn when_receipt_arrives_should_add_units() {
        let inventory = InMemoryInventory::demo();
        let req = post(json!({"delta": 5, "reason": "receipt"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &inventory, req).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        assert_eq!(body_json(&response)["on_hand"], 12);
        assert!(inventory.ledger().violations().is_empty());
    }

    #[tokio::test]
    async fn when_damage_exceeds_unreserved_units_should_409_stock_reserved() {
        let req = post(json!({"delta": -8, "reason": "damage"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "stock_reserved");
    }

    #[tokio::test]
    async fn when_receipt_is_negative_should_422() {
        let req = post(json!({"delta": -1, "reason": "receipt"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 422);
    }

    #[tokio::test]
    async fn when_a_shopper_adjusts_should_403_before_the_body_is_read() {
        for body in [r#"{"delta": -9223372036854775808, "reason": "damage"}"#, "{not json", ""] {
            let req = post(json!({})).body(body).caller("shopper-1", "shoppers").build();
            let inventory = InMemoryInventory::demo();
            let before = inventory.ledger().stock;
            let response = handle(&demo_store(), &inventory, req).await.unwrap();
            assert_eq!(response.status(), 403, "{body}: {}", body_json(&response));
            assert_eq!(body_json(&response)["error"]["code"], "forbidden");
            assert_eq!(inventory.ledger().stock, before);
        }
    }

    #[tokio::test]
    async fn when_the_delta_is_at_or_beyond_the_limit_should_422_naming_delta() {
        let max = commerce_domain::inventory::MAX_UNITS;
        for (delta, reason) in [
            (i64::MIN, "damage"),
            (i64::MIN + 1, "correction"),
            (-max - 1, "damage"),
            (max + 1, "receipt"),
            (i64::MAX, "correction"),
        ] {
            let req = post(json!({"delta": delta, "reason": reason})).caller(DEMO_SELLERS[0], "sellers").build();
            let inventory = InMemoryInventory::demo();
            let before = inventory.ledger().stock;
            let response = handle(&demo_store(), &inventory, req).await.unwrap();
            assert_eq!(response.status(), 422, "{delta}: {}", body_json(&response));
            assert_eq!(body_json(&response)["error"]["code"], "validation_failed");
            assert_eq!(body_json(&response)["error"]["field"], "delta");
            assert_eq!(inventory.ledger().stock, before);
        }
    }

    #[tokio::test]
    async fn when_a_receipt_would_take_on_hand_past_the_limit_should_422_and_change_nothing() {
        let max = commerce_domain::inventory::MAX_UNITS;
        let inventory = InMemoryInventory::demo();
        let receipt = |key: &str, delta: i64| {
            post(json!({"delta": delta, "reason": "receipt"}))
                .header("idempotency-key", key)
                .caller(DEMO_SELLERS[0], "sellers")
                .build()
        };
        let first = handle(&demo_store(), &inventory, receipt("fill", max - 7)).await.unwrap();
        assert_eq!(body_json(&first)["on_hand"], max, "{}", body_json(&first));
        let before = inventory.ledger().stock;
        let over = handle(&demo_store(), &inventory, receipt("over", 1)).await.unwrap();
        assert_eq!(over.status(), 422, "{}", body_json(&over));
        assert_eq!(body_json(&over)["error"]["code"], "validation_failed");
        assert_eq!(body_json(&over)["error"]["field"], "delta");
        assert_eq!(inventory.ledger().stock, before);
        assert!(inventory.ledger().violations().is_empty());
    }

    #[tokio::test]
    async fn when_reason_is_unknown_should_400() {
        let req = post(json!({"delta": 1, "reason": "magic"})).caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 400);
    }

    #[tokio::test]
    async fn when_the_same_key_comes_again_should_answer_the_first_result_and_change_nothing() {
        let inventory = InMemoryInventory::demo();
        let receipt = || post(json!({"delta": 5, "reason": "receipt"})).caller(DEMO_SELLERS[0], "sellers").build();
        let first = handle(&demo_store(), &inventory, receipt()).await.unwrap();
        assert_eq!(first.status(), 200, "{}", body_json(&first));
        let stock_after_first = inventory.ledger().stock;
        let second = handle(&demo_store(), &inventory, receipt()).await.unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(second.headers()["idempotent-replayed"], "true");
        assert_eq!(body_json(&first), body_json(&second));
        assert_eq!(inventory.ledger().stock, stock_after_first);
        let other = post(json!({"delta": 6, "reason": "receipt"})).caller(DEMO_SELLERS[0], "sellers").build();
        let reused = handle(&demo_store(), &inventory, other).await.unwrap();
        assert_eq!(reused.status(), 422);
        assert_eq!(body_json(&reused)["error"]["code"], "idempotency_key_reused");
        assert_eq!(inventory.ledger().stock, stock_after_first);
        assert!(inventory.ledger().violations().is_empty());
    }

    #[tokio::test]
    async fn when_the_key_is_missing_should_400_naming_the_header() {
        let req = request("POST", ROUTE, &format!("/v1/seller/inventory/{SKU}/wh_east/adjustments"))
            .path_param("sku", SKU)
            .path_param("warehouse_id", "wh_east")
            .json(&json!({"delta": 5, "reason": "receipt"}))
            .caller(DEMO_SELLERS[0], "sellers")
            .build();
        let inventory = InMemoryInventory::demo();
        let before = inventory.ledger().stock;
        let response = handle(&demo_store(), &inventory, req).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["code"], "invalid_parameter");
        assert_eq!(body_json(&response)["error"]["field"], "Idempotency-Key");
        assert_eq!(inventory.ledger().stock, before);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/adjust-stock").as_ref()) {
            let response = handle(&demo_store(), &InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
