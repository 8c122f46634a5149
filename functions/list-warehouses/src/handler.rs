//! Answers 200 with every warehouse, for sellers and admins.

use commerce_app::ports::WarehouseReader;
use commerce_app::services::inventory;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(store: &impl WarehouseReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        inventory::list_warehouses(&caller, store).await.map(|items| json!({ "items": items }))
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;

    #[tokio::test]
    async fn when_seller_lists_should_see_two_warehouses_with_locations() {
        let req = request("GET", "/v1/warehouses", "/v1/warehouses").caller("s1", "sellers").build();
        let response = handle(&InMemoryInventory::demo(), req).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["items"].as_array().unwrap().len(), 2);
        assert_eq!(body["items"][0]["location"]["country"], "US");
        assert!(body["items"][0]["location"]["coordinates"]["latitude"].is_number());
    }

    #[tokio::test]
    async fn when_shopper_lists_should_403() {
        let req = request("GET", "/v1/warehouses", "/v1/warehouses").caller("u1", "shoppers").build();
        assert_eq!(handle(&InMemoryInventory::demo(), req).await.unwrap().status(), 403);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-warehouses").as_ref()) {
            let response = handle(&InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
