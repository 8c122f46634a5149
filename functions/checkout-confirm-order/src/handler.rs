//! Confirms the order (a repeat is a no-op) and returns the notification the next state publishes.

use commerce::ports::{OrderReader, OrderWriter};
use commerce::services::checkout::{self, task_error};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Input {
    order_id: String,
    payment: Payment,
}

#[derive(Deserialize)]
struct Payment {
    payment_id: String,
}

pub async fn handle(orders: &(impl OrderReader + OrderWriter), event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let input: Input = checkout::step_input(event.payload).map_err(task_error)?;
    let notification = checkout::confirm_order(orders, &input.order_id, &input.payment.payment_id, chrono::Utc::now())
        .await
        .map_err(task_error)?;
    serde_json::to_value(notification).map_err(|e| task_error(commerce::DomainError::unexpected(e)))
}
