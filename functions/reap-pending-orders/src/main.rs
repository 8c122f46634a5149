//! Scheduled every minute: an order still pending `PENDING_ORDER_TIMEOUT_SECONDS` after it was placed lost its
//! saga (the machine's timeout ended it without compensation, or nothing started it); it is compensated and
//! failed as `expired`.

mod handler;

use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_aws::inventory::DynamoInventory;
use commerce_aws::payments::ConfiguredProvider;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        orders: commerce_lambda::wiring::orders(&dynamo)?,
        inventory: DynamoInventory::new(dynamo.clone(), config::required("INVENTORY_TABLE")?),
        flash: DynamoFlashSales::without_inventory(dynamo, config::required("FLASH_SALES_TABLE")?),
        provider: ConfiguredProvider::from_env(&aws).await?,
        bound: chrono::Duration::seconds(config::parsed_or("PENDING_ORDER_TIMEOUT_SECONDS", 600)?),
        batch: config::parsed_or("REAP_BATCH_SIZE", 100)?,
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
