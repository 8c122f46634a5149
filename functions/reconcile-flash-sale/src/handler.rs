//! Any event (the schedule's) in, one sweep, its report out.

use commerce_app::ports::{FlashAdmissions, FlashReconciler, FlashSaleReader, FlashTicketStore};
use commerce_app::services::flash_sale::{self, SweepReport};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    sales: &(impl FlashReconciler + FlashAdmissions + FlashSaleReader + FlashTicketStore),
    _event: LambdaEvent<serde_json::Value>,
) -> Result<SweepReport, Error> {
    Ok(flash_sale::sweep(sales, sales, chrono::Utc::now()).await?)
}
