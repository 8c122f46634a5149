//! One run per scheduled event: compensates and fails (as `expired`) the pending orders placed more than the
//! bound ago, at most a batch, and returns what it did. Failing to list them fails the invocation; an order
//! that cannot be finished now is counted and left for the next run.

use commerce_app::ports::{
    FlashTicketStore, OrderReader, OrderWriter, PaymentLedger, PaymentProvider, PendingOrders, ReservationStore,
    SoldStockReturns,
};
use commerce_app::services::checkout;
use commerce_lambda::metrics::{self, Metric};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// What the reaper needs, built once per cold start.
pub struct Deps<O, I, F, P> {
    pub orders: O,
    pub inventory: I,
    pub flash: F,
    pub provider: P,
    /// How long an order may stay pending: longer than any execution may run.
    pub bound: chrono::Duration,
    pub batch: usize,
}

pub async fn handle<O, I, F, P>(deps: &Deps<O, I, F, P>, _event: LambdaEvent<Value>) -> Result<Value, Error>
where
    O: PendingOrders + OrderReader + OrderWriter + PaymentLedger,
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore,
    P: PaymentProvider,
{
    let (d, now) = (deps, chrono::Utc::now());
    let report =
        checkout::reap_pending_orders(&d.orders, &d.inventory, &d.flash, &d.provider, d.bound, d.batch, now).await?;
    tracing::info!(expired = report.expired, skipped = report.skipped, failed = report.failed, "reap done");
    metrics::count_by(Metric::CheckoutsFailed, metrics::REASON, "expired", report.expired as u64);
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::order::OrderStatus;
    use commerce_testkit::flash_sale::InMemoryFlashSales;
    use commerce_testkit::inventory::InMemoryInventory;
    use commerce_testkit::orders::{demo_orders, InMemoryPayments};
    use lambda_runtime::Context;

    fn scheduled_event() -> LambdaEvent<Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/reap-pending-orders/scheduled-event.json");
        let text = std::fs::read_to_string(path).unwrap();
        LambdaEvent::new(serde_json::from_str(&text).unwrap(), Context::default())
    }

    #[tokio::test]
    async fn when_a_demo_order_is_pending_past_the_bound_should_fail_it_expired_once() {
        let payments = InMemoryPayments::new();
        let deps = Deps {
            orders: demo_orders(&payments).await,
            inventory: InMemoryInventory::new(),
            flash: InMemoryFlashSales::default(),
            provider: payments,
            bound: chrono::Duration::minutes(10),
            batch: 10,
        };
        let report = handle(&deps, scheduled_event()).await.unwrap();
        assert_eq!((report["expired"].as_u64(), report["failed"].as_u64()), (Some(1), Some(0)), "{report}");
        let order = deps.orders.get_order("ord_demo-pending").await.unwrap().unwrap();
        assert_eq!((order.status(), order.failure().map(|f| f.as_str())), (OrderStatus::Failed, Some("expired")));
        let confirmed = deps.orders.get_order("ord_demo-confirmed").await.unwrap().unwrap();
        assert_eq!(confirmed.status(), OrderStatus::Confirmed);
        let again = handle(&deps, scheduled_event()).await.unwrap();
        assert_eq!(again["expired"], 0);
    }
}
