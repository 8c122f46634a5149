//! Reads the saga input and holds the order's promotion uses (idempotent: an order already held is done);
//! fails with `PromotionUnavailable` when a promotion has no use left, the customer's limit is reached or a
//! single-use code is taken, so the saga compensates before anything is authorized.

use commerce_app::ports::PromotionReader;
use commerce_app::services::checkout::{self, SagaInput};
use commerce_app::services::promotions::{self, HoldPorts};
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// What the step needs.
pub struct Deps<O, P> {
    pub orders: O,
    pub promotions: P,
}

pub async fn handle<O: HoldPorts, P: PromotionReader>(
    deps: &Deps<O, P>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    promotions::hold_promotions(&deps.orders, &deps.promotions, &input.order_id, chrono::Utc::now())
        .await
        .map_err(task_error)?;
    Ok(json!({ "held": true }))
}
