//! `POST /v1/orders/{order_id}/cancel`: the owner cancels an order before shipment, which voids the
//! authorization and returns the stock.

mod handler;

use commerce::adapters::flash_sale::DynamoFlashSales;
use commerce::adapters::inventory::DynamoInventory;
use commerce::adapters::orders::{DynamoOrders, SqsOrderEvents};
use commerce::adapters::payments::ConfiguredProvider;
use commerce::{config, telemetry};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let deps = handler::Deps {
        orders: DynamoOrders::new(dynamo.clone(), config::required("ORDERS_TABLE")?),
        inventory: DynamoInventory::new(dynamo.clone(), inventory_table.clone()),
        flash: DynamoFlashSales::new(dynamo, config::required("FLASH_SALES_TABLE")?, inventory_table),
        provider: ConfiguredProvider::from_env(&aws)?,
        events: SqsOrderEvents::new(aws_sdk_sqs::Client::new(&aws), config::required("ORDER_EVENTS_QUEUE_URL")?),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
