//! Checkout saga compensation: release the order's reservation and flash-sale hold (no effect if never made).

mod handler;

use commerce::adapters::flash_sale::DynamoFlashSales;
use commerce::adapters::inventory::DynamoInventory;
use commerce::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        inventory: DynamoInventory::new(dynamo.clone(), config::required("INVENTORY_TABLE")?),
        flash: DynamoFlashSales::new(dynamo, config::required("FLASH_SALES_TABLE")?, String::new()),
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
