//! Reads the saga input and reserves (or consumes the order's flash-sale hold); fails with `OutOfStock` when
//! stock is short, `Gone` when the flash hold has expired.

use commerce::domain::inventory::ReservationPolicy;
use commerce::ports::{
    FlashHolds, FlashSaleReader, FlashTicketStore, ReservationStore, SkuCatalog, StockReader, WarehouseReader,
};
use commerce::services::checkout::{self, task_error, SagaInput};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the step needs.
pub struct Deps<C, I, F> {
    pub catalog: C,
    pub inventory: I,
    pub flash: F,
    pub policy: ReservationPolicy,
}

pub async fn handle<C, I, F>(deps: &Deps<C, I, F>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    C: SkuCatalog,
    I: StockReader + WarehouseReader + ReservationStore,
    F: FlashSaleReader + FlashTicketStore + FlashHolds,
{
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    checkout::reserve_stock(&deps.catalog, &deps.inventory, &deps.flash, &deps.policy, &input, chrono::Utc::now())
        .await
        .map_err(task_error)
}
