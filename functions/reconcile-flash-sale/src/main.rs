//! Scheduled every minute: expires run-out checkout holds (their units go to the next in line) and reconciles
//! ended flash sales back into inventory, exactly.

mod handler;

use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("FLASH_SALES_TABLE")?;
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let aws = config::aws().await;
    let sales = DynamoFlashSales::new(aws_sdk_dynamodb::Client::new(&aws), table, inventory_table);
    run(service_fn(|event| handler::handle(&sales, event))).await
}
