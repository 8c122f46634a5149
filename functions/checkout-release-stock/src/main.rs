//! Checkout saga compensation: claim the order, then release its reservation (or return its committed units)
//! and flash-sale hold (no effect if never made, or when the order was confirmed).
// The use cases' tracing spans nest the saga step's future deeper than the default limit allows.
#![recursion_limit = "256"]

mod handler;

use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_aws::inventory::DynamoInventory;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        inventory: DynamoInventory::new(dynamo.clone(), config::required("INVENTORY_TABLE")?),
        flash: DynamoFlashSales::without_inventory(dynamo.clone(), config::required("FLASH_SALES_TABLE")?),
        orders: commerce_lambda::wiring::orders(&dynamo)?,
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
