//! `POST /v1/seller/flash-sales`: a seller creates a flash sale, allocating its units from inventory.

mod handler;

use commerce_aws::{catalog::DynamoCatalog, flash_sale::DynamoFlashSales};
use commerce_lambda::config::{self, FromEnv};
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let catalog_table = config::required("CATALOG_TABLE")?;
    let flash_table = config::required("FLASH_SALES_TABLE")?;
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let policy = commerce_app::services::flash_sale::SalePolicy::from_env()?;
    let aws = config::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let catalog = DynamoCatalog::new(client.clone(), catalog_table);
    let sales = DynamoFlashSales::new(client, flash_table, inventory_table);
    run(service_fn(|req| handler::handle(&catalog, &sales, policy, req))).await
}
