//! Releases the order's reservation.

use commerce::ports::ReservationStore;
use commerce::services::checkout::{self, task_error};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Input {
    order_id: String,
}

pub async fn handle(store: &impl ReservationStore, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let input: Input = checkout::step_input(event.payload).map_err(task_error)?;
    checkout::release_stock(store, &input.order_id, chrono::Utc::now()).await.map_err(task_error)?;
    Ok(json!({ "released": true }))
}
