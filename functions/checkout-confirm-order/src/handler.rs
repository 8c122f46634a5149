//! Commits the stock, confirms the order and clears the cart (each a no-op when already done); returns the
//! notification the next state publishes.

use commerce_app::ports::{CartStore, OrderReader, OrderWriter, ReservationStore};
use commerce_app::services::checkout::{self, ConfirmInput};
use commerce_lambda::metrics::{self, Metric};
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the step needs, built once per cold start.
pub struct Deps<I, O, C> {
    pub inventory: I,
    pub orders: O,
    pub carts: C,
}

pub async fn handle<I, O, C>(deps: &Deps<I, O, C>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic>
where
    I: ReservationStore,
    O: OrderReader + OrderWriter,
    C: CartStore,
{
    let input: ConfirmInput = checkout::step_input(event.payload).map_err(task_error)?;
    let notification =
        checkout::commit_and_confirm(&deps.inventory, &deps.orders, &deps.carts, &input, chrono::Utc::now())
            .await
            .map_err(task_error)?;
    metrics::count(Metric::OrdersPlaced, 1);
    serde_json::to_value(notification).map_err(|e| task_error(commerce_domain::DomainError::unexpected(e)))
}
