//! Parses a new warehouse (name, location with country, region and coordinates), creates it, answers 201.

use commerce_app::ports::WarehouseWriter;
use commerce_app::services::inventory;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl WarehouseWriter, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let body = api::parse_json(&req)?;
        inventory::create_warehouse(&caller, store, body, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::WarehouseReader;
    use commerce_testkit::http::{body_json, request, sample_events, RequestBuilder};
    use commerce_testkit::inventory::InMemoryInventory;
    use serde_json::json;

    fn post(body: serde_json::Value) -> RequestBuilder {
        request("POST", "/v1/admin/warehouses", "/v1/admin/warehouses").json(&body)
    }

    fn central() -> serde_json::Value {
        json!({"name": "Central", "location": {"country": "US", "region": "TX", "coordinates": {"latitude": 32.8, "longitude": -96.8}}})
    }

    #[tokio::test]
    async fn when_admin_creates_should_201_and_list_it() {
        let inventory = InMemoryInventory::demo();
        let response = handle(&inventory, post(central()).caller("a1", "admins").build()).await.unwrap();
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let id = body_json(&response)["warehouse_id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("wh_"));
        assert!(inventory.list_warehouses().await.unwrap().iter().any(|w| w.warehouse_id == id));
    }

    #[tokio::test]
    async fn when_seller_creates_should_403() {
        let response =
            handle(&InMemoryInventory::demo(), post(central()).caller("s1", "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_coordinates_are_missing_should_422() {
        let body = json!({"name": "Central", "location": {"country": "US", "region": "TX"}});
        let response = handle(&InMemoryInventory::demo(), post(body).caller("a1", "admins").build()).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "location.coordinates");
    }

    #[tokio::test]
    async fn when_id_is_taken_should_409() {
        let mut body = central();
        body["warehouse_id"] = json!("wh_east");
        let response = handle(&InMemoryInventory::demo(), post(body).caller("a1", "admins").build()).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "warehouse_exists");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-warehouse").as_ref()) {
            let response = handle(&InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
