//! Reads the saga input and reserves (or consumes the order's flash-sale hold); fails with `OutOfStock` when
//! stock is short, `Gone` when the flash hold has expired. With reserve at add-to-cart on, the cart's live
//! hold of exactly the order's lines becomes the order's reservation.

use commerce_app::ports::{
    CartStore, FlashHolds, FlashSaleReader, FlashTicketStore, ReservationReplacer, ReservationStore, SkuCatalog,
    StockReader, WarehouseReader,
};
use commerce_app::services::checkout::{self, SagaInput};
use commerce_domain::inventory::ReservationPolicy;
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the step needs.
pub struct Deps<C, I, F, K> {
    pub catalog: C,
    pub inventory: I,
    pub flash: F,
    /// The carts table, only when reserve at add-to-cart is on.
    pub cart_holds: Option<K>,
    pub policy: ReservationPolicy,
}

pub async fn handle<C, I, F, K>(deps: &Deps<C, I, F, K>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    C: SkuCatalog,
    I: StockReader + WarehouseReader + ReservationStore + ReservationReplacer,
    F: FlashSaleReader + FlashTicketStore + FlashHolds,
    K: CartStore,
{
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    let (carts, now) = (deps.cart_holds.as_ref(), chrono::Utc::now());
    let reserved =
        checkout::reserve_stock(&deps.catalog, &deps.inventory, &deps.flash, carts, &deps.policy, &input, now)
            .await
            .map_err(task_error)?;
    serde_json::to_value(reserved).map_err(|e| task_error(commerce_domain::DomainError::unexpected(e)))
}
