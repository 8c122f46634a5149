//! `POST /v1/admin/reservations`: An admin (operations, tests, benchmarks) holds stock through the same
//! reservation service the checkout saga calls.

mod handler;

use commerce_aws::{catalog::DynamoCatalog, inventory::DynamoInventory};
use commerce_domain::inventory::ReservationPolicy;
use commerce_lambda::config::{self, FromEnv};
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let catalog_table = config::required("CATALOG_TABLE")?;
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let policy = ReservationPolicy::from_env()?;
    let aws = config::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let catalog = DynamoCatalog::new(client.clone(), catalog_table);
    let inventory = DynamoInventory::new(client, inventory_table);
    run(service_fn(|req| handler::handle(&catalog, &inventory, &policy, req))).await
}
