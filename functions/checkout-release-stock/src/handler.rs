//! Releases the order's reservation and gives its flash-sale unit, if any, back to the sale.

use commerce::ports::{FlashTicketStore, ReservationStore};
use commerce::services::checkout::{self, task_error, FlashHold};
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
pub struct Deps<I, F> {
    pub inventory: I,
    pub flash: F,
}

pub async fn handle<I, F>(deps: &Deps<I, F>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    I: ReservationStore,
    F: FlashTicketStore,
{
    let input: Input = checkout::step_input(event.payload).map_err(task_error)?;
    let now = chrono::Utc::now();
    let hold = match &input.flash {
        Some(hold) => checkout::release_flash_hold(&deps.flash, &input.order_id, hold, now).await,
        None => Ok(()),
    };
    checkout::release_stock(&deps.inventory, &input.order_id, now).await.map_err(task_error)?;
    hold.map_err(task_error)?;
    Ok(json!({ "released": true }))
}
