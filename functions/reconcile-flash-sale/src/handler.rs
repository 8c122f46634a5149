//! Any event (the schedule's) in, one sweep, its report out; then the live sales' shards audited, the
//! violations found published as `StockInvariantViolations` (an audit that cannot read leaves the sweep done).

use commerce_app::ports::{FlashAdmissions, FlashReconciler, FlashSaleReader, FlashTicketStore};
use commerce_app::services::flash_audit;
use commerce_app::services::flash_sale::{self, SweepReport};
use commerce_lambda::metrics::{self, Metric};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    sales: &(impl FlashReconciler + FlashAdmissions + FlashSaleReader + FlashTicketStore),
    _event: LambdaEvent<serde_json::Value>,
) -> Result<SweepReport, Error> {
    let report = flash_sale::sweep(sales, sales, chrono::Utc::now()).await?;
    match flash_audit::audit_live_sales(sales).await {
        Ok(audit) => metrics::count(Metric::StockInvariantViolations, audit.violations as u64),
        Err(err) => tracing::warn!(error = %err, "flash-sale audit not done"),
    }
    Ok(report)
}
