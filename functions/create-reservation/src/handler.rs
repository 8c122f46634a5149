//! Parses a reservation request, reserves all or nothing, answers 201 with the reservation (the same id
//! again answers the same reservation).

use commerce_app::ports::{ReservationStore, SkuCatalog, StockReader, WarehouseReader};
use commerce_app::services::inventory;
use commerce_domain::inventory::ReservationPolicy;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    catalog: &impl SkuCatalog,
    store: &(impl StockReader + WarehouseReader + ReservationStore),
    policy: &ReservationPolicy,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        auth::caller(&req)?.require_admin()?;
        let body = api::parse_json(&req)?;
        inventory::reserve(catalog, store, policy, body, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::catalog::Component;
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::inventory::InMemoryInventory;
    use serde_json::json;

    fn post(body: serde_json::Value) -> RequestBuilder {
        request("POST", "/v1/admin/reservations", "/v1/admin/reservations").json(&body).caller("a1", "admins")
    }

    fn call(inventory: &InMemoryInventory, body: serde_json::Value) -> Response<Body> {
        let policy = ReservationPolicy::default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(handle(&demo_store(), inventory, &policy, post(body).build())).unwrap()
    }

    #[test]
    fn when_one_warehouse_cannot_cover_should_split_and_release_restores_both() {
        let inventory = InMemoryInventory::demo();
        let body = json!({"reservation_id": "chk_1", "owner": "guest",
            "lines": [{"sku": "LAP-0001-16GB-512GB", "quantity": 15}],
            "ship_to": {"country": "US", "region": "NJ"}});
        let response = call(&inventory, body.clone());
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let allocations = body_json(&response)["allocations"].as_array().unwrap().clone();
        assert_eq!(allocations.len(), 2, "{allocations:?}");
        assert_eq!(allocations.iter().map(|a| a["quantity"].as_u64().unwrap()).sum::<u64>(), 15);
        let again = call(&inventory, body);
        assert_eq!(body_json(&again)["allocations"].as_array().unwrap(), &allocations, "same id, same reservation");
        assert!(inventory.ledger().violations().is_empty());
    }

    #[test]
    fn when_stock_is_short_should_409_out_of_stock_naming_the_sku() {
        let body = json!({"reservation_id": "chk_2", "owner": "shopper", "lines": [{"sku": "LAP-0001-16GB-512GB", "quantity": 19}]});
        let response = call(&InMemoryInventory::demo(), body);
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["sku"], "LAP-0001-16GB-512GB");
    }

    #[test]
    fn when_bundle_is_reserved_should_hold_its_components() {
        let inventory = InMemoryInventory::demo();
        let body =
            json!({"reservation_id": "chk_3", "owner": "guest", "lines": [{"sku": "KIT-0096-BUNDLE", "quantity": 1}]});
        let response = call(&inventory, body);
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let skus: Vec<String> = body_json(&response)["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["sku"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            skus.contains(&"KIT-0076-NATURA".to_owned()) && skus.contains(&"KIT-0056-NATURA".to_owned()),
            "{skus:?}"
        );
    }

    #[tokio::test]
    async fn when_a_bundle_draws_on_another_sellers_sku_should_409_sku_unavailable_and_hold_nothing() {
        let sellers: Vec<String> = DEMO_SELLERS.iter().map(|s| (*s).to_owned()).collect();
        let (categories, mut products) = commerce_demo::catalog::catalog(&sellers).unwrap();
        // Stored without the create-time check: the second seller's product 0004 consumes the first's laptop.
        let bundle = &mut products[3];
        assert_eq!(bundle.seller_id, DEMO_SELLERS[1]);
        bundle.variants[0].components = vec![Component { sku: "LAP-0001-16GB-512GB".into(), quantity: 1 }];
        let sku = bundle.variants[0].sku.clone();
        let catalog = InMemoryCatalog::with(categories, products);
        let inventory = InMemoryInventory::demo();
        let body = json!({"reservation_id": "chk_4", "owner": "guest", "lines": [{"sku": sku, "quantity": 1}]});
        let response = handle(&catalog, &inventory, &ReservationPolicy::default(), post(body).build()).await.unwrap();
        assert_eq!(response.status(), 409, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["code"], "sku_unavailable");
        assert!(inventory.ledger().levels("LAP-0001-16GB-512GB").iter().all(|l| l.reserved == 0));
    }

    #[tokio::test]
    async fn when_seller_reserves_should_403() {
        let req = request("POST", "/v1/admin/reservations", "/v1/admin/reservations")
            .json(&json!({"reservation_id": "x", "owner": "guest", "lines": []}))
            .caller("s1", "sellers")
            .build();
        let response =
            handle(&demo_store(), &InMemoryInventory::demo(), &ReservationPolicy::default(), req).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-reservation").as_ref()) {
            let response =
                handle(&demo_store(), &InMemoryInventory::demo(), &ReservationPolicy::default(), event.request)
                    .await
                    .unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
