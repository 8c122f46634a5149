//! Voids whatever authorization the order has, unless the order was confirmed (by any execution).

use commerce_app::ports::{OrderReader, PaymentLedger, PaymentProvider};
use commerce_app::services::checkout;
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the step needs.
pub struct Deps<P, L> {
    pub provider: P,
    pub ledger: L,
}

#[derive(Deserialize)]
struct Input {
    order_id: String,
}

pub async fn handle<P, L>(deps: &Deps<P, L>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    P: PaymentProvider,
    L: PaymentLedger + OrderReader,
{
    let input: Input = checkout::step_input(event.payload).map_err(task_error)?;
    let payment = checkout::void_unconfirmed(&deps.provider, &deps.ledger, &input.order_id, chrono::Utc::now())
        .await
        .map_err(task_error)?;
    Ok(json!({ "payment_id": payment.as_ref().map(|p| p.payment_id.clone()), "status": payment.map(|p| p.status) }))
}
