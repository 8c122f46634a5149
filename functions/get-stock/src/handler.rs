//! Answers 200 with a seller's stock of one SKU in every warehouse.

use commerce_app::ports::{SkuCatalog, StockReader};
use commerce_app::services::inventory;
use commerce_domain::ids::Sku;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    catalog: &impl SkuCatalog,
    store: &impl StockReader,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let sku: Sku = api::path(&req, "sku")?;
        inventory::get_stock(&caller, catalog, store, &sku).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::inventory::InMemoryInventory;

    fn get(sku: &str) -> RequestBuilder {
        request("GET", "/v1/seller/inventory/{sku}", &format!("/v1/seller/inventory/{sku}")).path_param("sku", sku)
    }

    #[tokio::test]
    async fn when_owner_reads_should_list_both_warehouses() {
        let req = get("LAP-0001-16GB-512GB").caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["available"], 18);
        assert_eq!(body["warehouses"].as_array().unwrap().len(), 2);
        assert_eq!(body["warehouses"][0]["warehouse_id"], "wh_east");
    }

    #[tokio::test]
    async fn when_another_seller_reads_should_403() {
        let req = get("LAP-0001-16GB-512GB").caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_sku_is_unknown_should_404() {
        let req = get("NOPE-1").caller(DEMO_SELLERS[0], "sellers").build();
        let response = handle(&demo_store(), &InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-stock").as_ref()) {
            let response = handle(&demo_store(), &InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
