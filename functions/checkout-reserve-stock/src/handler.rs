//! Reads the saga input and reserves; fails with `OutOfStock` when stock is short.

use commerce::domain::inventory::ReservationPolicy;
use commerce::ports::{ReservationStore, SkuCatalog, StockReader, WarehouseReader};
use commerce::services::checkout::{self, task_error, SagaInput};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the step needs.
pub struct Deps<C, I> {
    pub catalog: C,
    pub inventory: I,
    pub policy: ReservationPolicy,
}

pub async fn handle<C, I>(deps: &Deps<C, I>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    C: SkuCatalog,
    I: StockReader + WarehouseReader + ReservationStore,
{
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    checkout::reserve_stock(&deps.catalog, &deps.inventory, &deps.policy, &input, chrono::Utc::now())
        .await
        .map_err(task_error)
}
