//! `GET /v1/flash-sales/{sale_id}`: a sale and whether it is upcoming, live, sold out or ended. Public.

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
    let sales = DynamoFlashSales::without_inventory(aws_sdk_dynamodb::Client::new(&aws), table);
    run(service_fn(|req| handler::handle(&sales, req))).await
}
