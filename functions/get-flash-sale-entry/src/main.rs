//! `GET /v1/flash-sales/{sale_id}/entries/{ticket_id}`: the caller's entry: waiting (with its position), won
//! (with the hold's expiry and how to check out), sold out or expired.

mod handler;

use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("FLASH_SALES_TABLE")?;
    let aws = config::aws().await;
    let sales = DynamoFlashSales::without_inventory(aws_sdk_dynamodb::Client::new(&aws), table)
        .reading_gate_copies(config::gate_copies()?);
    let gate_cache_ms: i64 = config::parsed_or("FLASH_GATE_CACHE_MS", 1000)?;
    let gates = commerce_app::services::flash_sale::OpenGates::new(chrono::Duration::milliseconds(gate_cache_ms));
    run(service_fn(|req| handler::handle(&sales, &gates, req))).await
}
