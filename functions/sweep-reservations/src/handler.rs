//! One sweep per scheduled event: releases expired held reservations (at most a batch) and returns what it
//! did. Failing to list expired reservations fails the invocation; a reservation that cannot be released
//! now is counted and left for the next sweep.

use commerce_app::ports::ReservationStore;
use commerce_app::services::inventory;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

pub async fn handle(store: &impl ReservationStore, batch: usize, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    let report = inventory::sweep(store, chrono::Utc::now(), batch).await?;
    tracing::info!(
        released = report.released,
        already_finished = report.already_finished,
        failed = report.failed,
        "sweep done"
    );
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::inventory::{Allocation, OwnerKind, Reservation, ReservationStatus};
    use commerce_testkit::inventory::InMemoryInventory;
    use lambda_runtime::Context;

    fn scheduled_event() -> LambdaEvent<Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/sweep-reservations/scheduled-event.json");
        let text = std::fs::read_to_string(path).unwrap();
        LambdaEvent::new(serde_json::from_str(&text).unwrap(), Context::default())
    }

    async fn hold(inventory: &InMemoryInventory, id: &str, expires_in_secs: i64) {
        let now = chrono::Utc::now();
        let reservation = Reservation {
            reservation_id: id.into(),
            status: ReservationStatus::Held,
            owner: OwnerKind::Shopper,
            lines: vec![],
            allocations: vec![Allocation {
                sku: "LAP-0001-16GB-512GB".into(),
                warehouse_id: "wh_west".into(),
                quantity: 4,
            }],
            bundles: Default::default(),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in_secs),
            release_reason: None,
        };
        inventory.try_reserve(&reservation).await.unwrap();
    }

    #[tokio::test]
    async fn when_reservations_expired_should_release_them_once() {
        let inventory = InMemoryInventory::demo();
        hold(&inventory, "r_expired", -1).await;
        hold(&inventory, "r_live", 600).await;
        let report = handle(&inventory, 100, scheduled_event()).await.unwrap();
        assert_eq!(report["released"], 1);
        let level = inventory.ledger().stock[&("LAP-0001-16GB-512GB".to_string(), "wh_west".to_string())].clone();
        assert_eq!(level.reserved, 4, "only the live reservation still holds stock");
        let again = handle(&inventory, 100, scheduled_event()).await.unwrap();
        assert_eq!(again["released"], 0);
        assert_eq!(inventory.ledger().stock[&("LAP-0001-16GB-512GB".to_string(), "wh_west".to_string())], level);
        assert!(inventory.ledger().violations().is_empty());
    }
}
