//! Commits a reservation (reserved units become sold; again: no effect), answers 200 with it.

use commerce::ports::ReservationStore;
use commerce::services::inventory;
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ReservationStore, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        auth::caller(&req)?.require_admin()?;
        let reservation_id = api::path_param(&req, "reservation_id")?;
        inventory::commit(store, &reservation_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce::adapters::catalog::testing::{body_json, request, sample_events};
    use commerce::adapters::inventory::memory::InMemoryInventory;
    use commerce::domain::inventory::{Allocation, OwnerKind, Reservation, ReservationStatus};
    use commerce::ports::ReservationStore;

    const SKU: &str = "LAP-0001-16GB-512GB";

    async fn held(inventory: &InMemoryInventory, id: &str) {
        let now = chrono::Utc::now();
        let reservation = Reservation {
            reservation_id: id.into(),
            status: ReservationStatus::Held,
            owner: OwnerKind::Guest,
            lines: vec![],
            allocations: vec![Allocation { sku: SKU.into(), warehouse_id: "wh_east".into(), quantity: 3 }],
            created_at: now,
            expires_at: now + chrono::Duration::minutes(15),
            release_reason: None,
        };
        inventory.try_reserve(&reservation).await.unwrap();
    }

    fn post(id: &str) -> Request {
        let route = "/v1/admin/reservations/{reservation_id}/commit";
        request("POST", route, &format!("/v1/admin/reservations/{id}/commit"))
            .path_param("reservation_id", id)
            .caller("a1", "admins")
            .build()
    }

    #[tokio::test]
    async fn when_done_twice_should_change_stock_once() {
        let inventory = InMemoryInventory::demo();
        held(&inventory, "r1").await;
        let first = handle(&inventory, post("r1")).await.unwrap();
        assert_eq!(first.status(), 200, "{}", body_json(&first));
        let after_first = inventory.ledger().stock;
        let second = handle(&inventory, post("r1")).await.unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(body_json(&first)["status"], body_json(&second)["status"]);
        assert_eq!(inventory.ledger().stock, after_first);
        assert!(inventory.ledger().violations().is_empty());
        let level = &after_first[&(SKU.to_string(), "wh_east".to_string())];
        assert_eq!(level.reserved, 0);
        assert_eq!(level.sold, 3);
    }

    #[tokio::test]
    async fn when_unknown_should_404() {
        assert_eq!(handle(&InMemoryInventory::demo(), post("r_none")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/commit-reservation").as_ref()) {
            let response = handle(&InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
