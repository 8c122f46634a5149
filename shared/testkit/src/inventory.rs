//! An in-memory inventory with the same guarded updates as the DynamoDB adapter (it applies the domain
//! `Ledger`, whose rules the adapter mirrors). Handler tests use it as the fake of every inventory port.

use chrono::{DateTime, Utc};
use commerce_app::ports::{
    FinishOutcome, ReservationReplacer, ReservationStore, StockReader, StockWriter, WarehouseReader, WarehouseWriter,
};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::inventory::reservation::{Action, ReleaseReason, ReplaceOutcome, ReserveOutcome};
use commerce_domain::inventory::{
    AdjustOutcome, AdjustmentKey, Ledger, Reservation, ReservationStatus, SetStock, StockAdjustment, StockLevel,
    StockView, Warehouse,
};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    ledger: Ledger,
    warehouses: Vec<Warehouse>,
    /// Adjustment keys: fingerprint and first result.
    adjustment_keys: HashMap<String, (String, StockView)>,
    /// Markers of sold units returned to stock, per (order, reason).
    sold_returns: std::collections::BTreeSet<String>,
}

/// The in-memory inventory.
#[derive(Debug, Default)]
pub struct InMemoryInventory {
    state: Mutex<State>,
}

impl InMemoryInventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// An inventory with these warehouses.
    pub fn with_warehouses(warehouses: impl IntoIterator<Item = Warehouse>) -> Self {
        let inventory = Self::new();
        inventory.lock().warehouses.extend(warehouses);
        inventory
    }

    /// A copy of the ledger (stock levels and reservations), e.g. to check the invariant.
    pub fn ledger(&self) -> Ledger {
        self.lock().ledger.clone()
    }

    /// Holds `quantity` units of `sku` in `warehouse_id` under `reservation_id` for 15 minutes, as a guest
    /// (test set-up); `false` if the stock or the id did not allow it.
    pub fn hold(&self, reservation_id: &str, sku: &str, warehouse_id: &str, quantity: u32) -> bool {
        let now = Utc::now();
        let reservation = Reservation {
            reservation_id: reservation_id.to_owned(),
            status: ReservationStatus::Held,
            owner: commerce_domain::inventory::OwnerKind::Guest,
            lines: vec![commerce_domain::inventory::ReservationLine { sku: sku.to_owned(), quantity }],
            allocations: vec![commerce_domain::inventory::Allocation {
                sku: sku.to_owned(),
                warehouse_id: warehouse_id.to_owned(),
                quantity,
            }],
            bundles: Default::default(),
            created_at: now,
            expires_at: now + chrono::Duration::minutes(15),
            release_reason: None,
        };
        matches!(self.lock().ledger.try_reserve(reservation), ReserveOutcome::Reserved(_))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StockReader for InMemoryInventory {
    async fn stock_levels(&self, skus: &[String]) -> Result<HashMap<String, Vec<StockLevel>>> {
        let state = self.lock();
        Ok(skus.iter().map(|sku| (sku.clone(), state.ledger.levels(sku))).collect())
    }
}

impl StockWriter for InMemoryInventory {
    async fn set_stock(&self, sku: &str, warehouse_id: &str, set: &SetStock) -> Result<StockLevel> {
        self.lock().ledger.set(sku, warehouse_id, set)
    }

    async fn adjust_stock(&self, sku: &str, warehouse_id: &str, adjustment: &StockAdjustment) -> Result<StockLevel> {
        self.lock().ledger.adjust(sku, warehouse_id, adjustment)
    }

    async fn adjust_stock_once(
        &self,
        sku: &str,
        warehouse_id: &str,
        adjustment: &StockAdjustment,
        key: &AdjustmentKey,
    ) -> Result<AdjustOutcome> {
        let mut state = self.lock();
        if let Some((fingerprint, first)) = state.adjustment_keys.get(&key.id) {
            return Ok(if *fingerprint == key.fingerprint {
                AdjustOutcome::Replayed(first.clone())
            } else {
                AdjustOutcome::KeyReused
            });
        }
        let level = state.ledger.adjust(sku, warehouse_id, adjustment)?;
        state.adjustment_keys.insert(key.id.clone(), (key.fingerprint.clone(), StockView::from(&level)));
        Ok(AdjustOutcome::Applied(level))
    }
}

impl WarehouseReader for InMemoryInventory {
    async fn list_warehouses(&self) -> Result<Vec<Warehouse>> {
        Ok(self.lock().warehouses.clone())
    }
}

impl WarehouseWriter for InMemoryInventory {
    async fn create_warehouse(&self, warehouse: &Warehouse) -> Result<()> {
        let mut state = self.lock();
        if state.warehouses.iter().any(|w| w.warehouse_id == warehouse.warehouse_id) {
            return Err(DomainError::conflict(ErrorCode::WarehouseExists, "a warehouse with this id exists"));
        }
        state.warehouses.push(warehouse.clone());
        Ok(())
    }
}

impl ReservationStore for InMemoryInventory {
    async fn try_reserve(&self, reservation: &Reservation) -> Result<ReserveOutcome> {
        Ok(self.lock().ledger.try_reserve(reservation.clone()))
    }

    async fn get_reservation(&self, reservation_id: &str) -> Result<Option<Reservation>> {
        Ok(self.lock().ledger.reservations.get(reservation_id).cloned())
    }

    async fn finish(
        &self,
        reservation: &Reservation,
        to: ReservationStatus,
        _reason: Option<ReleaseReason>,
        now: DateTime<Utc>,
    ) -> Result<FinishOutcome> {
        let mut state = self.lock();
        let held = state
            .ledger
            .reservations
            .get(&reservation.reservation_id)
            .is_some_and(|r| r.status == ReservationStatus::Held);
        if !held {
            return Ok(FinishOutcome::NotHeld);
        }
        let action = if to == ReservationStatus::Committed { Action::Commit } else { Action::Release };
        state.ledger.apply(&reservation.reservation_id, action, now).map(FinishOutcome::Done)
    }

    async fn expired_reservations(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        Ok(self.lock().ledger.expired(now).into_iter().take(limit).collect())
    }
}

impl ReservationReplacer for InMemoryInventory {
    async fn try_replace(&self, replacing: &[Reservation], new: &Reservation) -> Result<ReplaceOutcome> {
        let ids: Vec<String> = replacing.iter().map(|r| r.reservation_id.clone()).collect();
        Ok(self.lock().ledger.try_replace(&ids, new.clone()))
    }
}

impl InMemoryInventory {
    /// The demo warehouses and the demo stock of the in-memory demo catalog
    /// (`adapters::catalog::testing::demo_store`).
    pub fn demo() -> Self {
        let sellers: Vec<String> = crate::http::DEMO_SELLERS.iter().map(|s| (*s).to_owned()).collect();
        let products = commerce_demo::catalog::catalog(&sellers).map(|(_, p)| p).unwrap_or_default();
        let inventory = Self::with_warehouses(commerce_demo::inventory::warehouses());
        {
            let mut state = inventory.lock();
            for level in commerce_demo::inventory::stock(&products) {
                state.ledger.stock.insert((level.sku.clone(), level.warehouse_id.clone()), level);
            }
        }
        inventory
    }
}

impl commerce_app::ports::SoldStockReturns for InMemoryInventory {
    async fn return_sold(
        &self,
        request: &commerce_domain::inventory::returns::SoldReturn,
        _: DateTime<Utc>,
    ) -> Result<bool> {
        request.validate()?;
        let mut state = self.lock();
        if state.sold_returns.contains(&request.marker_id()) {
            return Ok(false);
        }
        let mut changed = Vec::with_capacity(request.lines.len());
        for line in &request.lines {
            let key = (line.sku.clone(), line.warehouse_id.clone());
            let mut level = state.ledger.stock.get(&key).cloned().ok_or_else(|| DomainError::not_found("stock"))?;
            commerce_domain::inventory::returns::return_sold(&mut level, line.quantity, request.flash)?;
            changed.push((key, level));
        }
        state.ledger.stock.extend(changed);
        state.sold_returns.insert(request.marker_id());
        Ok(true)
    }
}
