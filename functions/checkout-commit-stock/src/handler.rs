//! Commits the order's reservation.

use commerce::ports::ReservationStore;
use commerce::services::checkout::{self, task_error, SagaInput};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

pub async fn handle(store: &impl ReservationStore, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    checkout::commit_stock(store, &input, chrono::Utc::now()).await.map_err(task_error)?;
    Ok(json!({ "committed": true }))
}
