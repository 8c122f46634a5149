//! Claims the order for compensation, then releases its reservation (or returns its committed units) and
//! gives its flash-sale unit, if any, back to the sale. Nothing is touched when the order was confirmed.

use commerce_app::ports::{FlashTicketStore, OrderReader, OrderWriter, ReservationStore, SoldStockReturns};
use commerce_app::services::checkout::{self, FlashHold};
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Input {
    order_id: String,
    #[serde(default)]
    flash: Option<FlashHold>,
}

/// What the step needs.
pub struct Deps<I, F, O> {
    pub inventory: I,
    pub flash: F,
    pub orders: O,
}

pub async fn handle<I, F, O>(deps: &Deps<I, F, O>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore,
    O: OrderReader + OrderWriter,
{
    let input: Input = checkout::step_input(event.payload).map_err(task_error)?;
    let (hold, now) = (input.flash.as_ref(), chrono::Utc::now());
    let released = checkout::release_stock(&deps.inventory, &deps.flash, &deps.orders, &input.order_id, hold, now)
        .await
        .map_err(task_error)?;
    Ok(json!({ "released": released }))
}
