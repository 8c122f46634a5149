//! Authorizes; a decline fails with `PaymentDeclined`, a provider outage or timeout with `Transient`.

use commerce::ports::PaymentProvider;
use commerce::services::checkout::{self, task_error, SagaInput};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// What the step needs.
pub struct Deps<P> {
    pub provider: P,
}

pub async fn handle<P: PaymentProvider>(deps: &Deps<P>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    let payment = checkout::authorize_payment(&deps.provider, &input).await.map_err(task_error)?;
    Ok(json!({ "payment_id": payment.payment_id, "status": payment.status }))
}
