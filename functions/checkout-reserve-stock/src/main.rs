//! Checkout saga step: reserve the order's stock (reservation id = order id), all or nothing, or adopt the
//! cart's hold when reserve at add-to-cart is on (CART_RESERVE_ON_ADD, CARTS_TABLE).
// The use cases' tracing spans nest the saga step's future deeper than the default limit allows.
#![recursion_limit = "256"]

mod handler;

use commerce_aws::cart::DynamoCarts;
use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_aws::inventory::DynamoInventory;
use commerce_domain::cart::CartHolds;
use commerce_domain::inventory::ReservationPolicy;
use commerce_lambda::config::{self, FromEnv};
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let cart_holds = if CartHolds::from_env()?.enabled {
        Some(DynamoCarts::new(dynamo.clone(), config::required("CARTS_TABLE")?))
    } else {
        None
    };
    let deps = handler::Deps {
        catalog: DynamoCatalog::new(dynamo.clone(), config::required("CATALOG_TABLE")?),
        inventory: DynamoInventory::new(dynamo.clone(), config::required("INVENTORY_TABLE")?),
        flash: DynamoFlashSales::without_inventory(dynamo, config::required("FLASH_SALES_TABLE")?),
        cart_holds,
        policy: ReservationPolicy::from_env()?,
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
