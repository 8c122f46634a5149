//! `POST /v1/admin/reservations/{reservation_id}/{commit|release}` (the commit-reservation and
//! release-reservation functions): an admin commits or releases a held reservation; doing it again changes
//! nothing.

use commerce_domain::inventory::reservation::Action;
use commerce_lambda::inventory::admin_finish;
use commerce_testkit::http::{body_json, request};
use commerce_testkit::inventory::InMemoryInventory;

const SKU: &str = "LAP-0001-16GB-512GB";

/// Holds 3 units under `r1`, finishes it twice, and returns the stock's (reserved, sold) after.
async fn finish_twice(action: Action, verb: &str) -> (i64, i64) {
    let inventory = InMemoryInventory::demo();
    assert!(inventory.hold("r1", SKU, "wh_east", 3));
    let post = || {
        let template = format!("/v1/admin/reservations/{{reservation_id}}/{verb}");
        request("POST", &template, &format!("/v1/admin/reservations/r1/{verb}"))
            .path_param("reservation_id", "r1")
            .caller("a1", "admins")
            .build()
    };
    let first = admin_finish(&inventory, &post(), action, chrono::Utc::now()).await;
    assert_eq!(first.status(), 200, "{}", body_json(&first));
    let after_first = inventory.ledger().stock;
    let second = admin_finish(&inventory, &post(), action, chrono::Utc::now()).await;
    assert_eq!(second.status(), 200);
    assert_eq!(body_json(&first)["status"], body_json(&second)["status"]);
    assert_eq!(inventory.ledger().stock, after_first);
    assert!(inventory.ledger().violations().is_empty());
    let level = &after_first[&(SKU.to_string(), "wh_east".to_string())];
    (level.reserved, level.sold)
}

#[tokio::test]
async fn a_commit_done_twice_sells_the_units_once() {
    assert_eq!(finish_twice(Action::Commit, "commit").await, (0, 3));
}

#[tokio::test]
async fn a_release_done_twice_gives_the_units_back_once() {
    assert_eq!(finish_twice(Action::Release, "release").await, (0, 0));
}

#[tokio::test]
async fn only_an_admin_may_finish_a_reservation() {
    let inventory = InMemoryInventory::demo();
    assert!(inventory.hold("r1", SKU, "wh_east", 3));
    let req = request("POST", "/v1/admin/reservations/{reservation_id}/commit", "/v1/admin/reservations/r1/commit")
        .path_param("reservation_id", "r1")
        .caller("s1", "sellers")
        .build();
    let response = admin_finish(&inventory, &req, Action::Commit, chrono::Utc::now()).await;
    assert_eq!(response.status(), 403);
    let level = &inventory.ledger().stock[&(SKU.to_string(), "wh_east".to_string())];
    assert_eq!((level.reserved, level.sold), (3, 0));
}
