//! Commits a reservation (reserved units become sold; again: no effect), answers 200 with it.

use commerce_app::ports::ReservationStore;
use commerce_domain::inventory::reservation::Action;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ReservationStore, req: Request) -> Result<Response<Body>, Error> {
    Ok(commerce_lambda::inventory::admin_finish(store, &req, Action::Commit, chrono::Utc::now()).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;

    const SKU: &str = "LAP-0001-16GB-512GB";

    #[tokio::test]
    async fn when_done_twice_should_change_stock_once() {
        let inventory = InMemoryInventory::demo();
        assert!(inventory.hold("r1", SKU, "wh_east", 3));
        let post = || {
            request("POST", "/v1/admin/reservations/{reservation_id}/commit", "/v1/admin/reservations/r1/commit")
                .path_param("reservation_id", "r1")
                .caller("a1", "admins")
                .build()
        };
        let first = handle(&inventory, post()).await.unwrap();
        assert_eq!(first.status(), 200, "{}", body_json(&first));
        let after_first = inventory.ledger().stock;
        let second = handle(&inventory, post()).await.unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(body_json(&first)["status"], body_json(&second)["status"]);
        assert_eq!(inventory.ledger().stock, after_first);
        assert!(inventory.ledger().violations().is_empty());
        let level = &after_first[&(SKU.to_string(), "wh_east".to_string())];
        assert_eq!((level.reserved, level.sold), (0, 3));
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/commit-reservation").as_ref()) {
            let response = handle(&InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
