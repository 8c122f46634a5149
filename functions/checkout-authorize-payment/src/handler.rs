//! Authorizes; a decline fails with `PaymentDeclined`, a provider outage or timeout with `Transient`.

use commerce_app::ports::{PaymentLedger, PaymentProvider};
use commerce_app::services::checkout::{self, SagaInput};
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// What the step needs.
pub struct Deps<P, L> {
    pub provider: P,
    pub ledger: L,
}

pub async fn handle<P: PaymentProvider, L: PaymentLedger>(
    deps: &Deps<P, L>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    let payment = checkout::authorize_payment(&deps.provider, &deps.ledger, &input, chrono::Utc::now())
        .await
        .map_err(task_error)?;
    Ok(json!({ "payment_id": payment.payment_id, "status": payment.status }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::payment::PaymentStatus;
    use commerce_testkit::orders::{InMemoryOrders, InMemoryPayments};

    fn event(payment_method: &str) -> LambdaEvent<Value> {
        let payload = json!({
            "order_id": "ord_1", "cart_id": "cart_1", "lines": [{"sku": "SKU-1", "quantity": 1}], "owner": "shopper",
            "payment_method": payment_method, "amount": {"amount": 3899, "currency": "USD"}
        });
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn when_authorized_should_bind_the_order_to_that_payment_once() {
        let deps = Deps { provider: InMemoryPayments::default(), ledger: InMemoryOrders::new() };
        let first = handle(&deps, event("pm_card_visa")).await.unwrap();
        let bound = deps.ledger.payment_for_order("ord_1").await.unwrap().expect("bound");
        assert_eq!(
            (bound.payment_id.as_str(), bound.status),
            (first["payment_id"].as_str().unwrap(), PaymentStatus::Authorized)
        );
        let again = handle(&deps, event("pm_card_visa")).await.unwrap();
        assert_eq!(again["payment_id"], first["payment_id"]);
        assert_eq!(deps.ledger.payment_for_order("ord_1").await.unwrap(), Some(bound));
    }

    #[tokio::test]
    async fn when_declined_should_bind_nothing() {
        let deps = Deps { provider: InMemoryPayments::default(), ledger: InMemoryOrders::new() };
        let err = handle(&deps, event("pm_card_visa_chargeDeclined")).await.unwrap_err();
        assert_eq!(err.error_type, "PaymentDeclined");
        assert_eq!(deps.ledger.payment_for_order("ord_1").await.unwrap(), None);
    }
}
