//! Answers 200 with a reservation; a held one past its expiry is released on read and reads as released.

use commerce_app::ports::ReservationStore;
use commerce_app::services::inventory;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ReservationStore, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        auth::caller(&req)?.require_admin()?;
        let reservation_id = api::path_param(&req, "reservation_id")?;
        inventory::get_reservation(store, &reservation_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ReservationStore;
    use commerce_domain::inventory::{Allocation, OwnerKind, Reservation, ReservationStatus};
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;

    async fn held(inventory: &InMemoryInventory, id: &str, expires_in_secs: i64) {
        let now = chrono::Utc::now();
        let reservation = Reservation {
            reservation_id: id.into(),
            status: ReservationStatus::Held,
            owner: OwnerKind::Guest,
            lines: vec![],
            allocations: vec![Allocation {
                sku: "LAP-0001-16GB-512GB".into(),
                warehouse_id: "wh_east".into(),
                quantity: 2,
            }],
            bundles: Default::default(),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in_secs),
            release_reason: None,
        };
        inventory.try_reserve(&reservation).await.unwrap();
    }

    fn get(id: &str) -> Request {
        request("GET", "/v1/admin/reservations/{reservation_id}", &format!("/v1/admin/reservations/{id}"))
            .path_param("reservation_id", id)
            .caller("a1", "admins")
            .build()
    }

    #[tokio::test]
    async fn when_expired_should_read_as_released_and_return_the_stock() {
        let inventory = InMemoryInventory::demo();
        held(&inventory, "r_old", -5).await;
        let response = handle(&inventory, get("r_old")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["status"], "released");
        assert_eq!(body_json(&response)["release_reason"], "expired");
        let ledger = inventory.ledger();
        assert_eq!(ledger.stock[&("LAP-0001-16GB-512GB".to_string(), "wh_east".to_string())].reserved, 0);
        assert!(ledger.violations().is_empty());
    }

    #[tokio::test]
    async fn when_live_should_read_as_held() {
        let inventory = InMemoryInventory::demo();
        held(&inventory, "r_live", 600).await;
        let response = handle(&inventory, get("r_live")).await.unwrap();
        assert_eq!(body_json(&response)["status"], "held");
        assert_eq!(handle(&inventory, get("r_none")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-reservation").as_ref()) {
            let response = handle(&InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
