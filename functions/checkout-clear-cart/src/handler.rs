//! Removes the ordered SKUs from the cart.

use commerce::ports::CartStore;
use commerce::services::checkout::{self, task_error, SagaInput};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

pub async fn handle(carts: &impl CartStore, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    let skus: Vec<String> = input.lines.iter().map(|l| l.sku.clone()).collect();
    checkout::clear_cart(carts, &input.cart_id, &skus, chrono::Utc::now()).await.map_err(task_error)?;
    Ok(json!({ "cleared": skus.len() }))
}
