//! Marks the order failed (a repeat is a no-op), and tells the customer when the payment was the reason.

use commerce_app::ports::{OrderEventPublisher, OrderReader, OrderWriter};
use commerce_app::services::checkout::{self, StepError};
use commerce_lambda::metrics::{self, Metric};
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Input {
    order_id: String,
    #[serde(default)]
    error: StepError,
}

pub async fn handle(
    orders: &(impl OrderReader + OrderWriter),
    events: &impl OrderEventPublisher,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let input: Input = checkout::step_input(event.payload).map_err(task_error)?;
    let reason = checkout::fail_order_and_tell(orders, events, &input.order_id, &input.error, chrono::Utc::now())
        .await
        .map_err(task_error)?;
    metrics::count_by(Metric::CheckoutsFailed, metrics::REASON, reason.as_str(), 1);
    Ok(json!({ "failure_reason": reason }))
}
