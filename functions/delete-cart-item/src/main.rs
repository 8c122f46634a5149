//! `DELETE /v1/carts/{cart_id}/items/{sku}`: The cart's owner removes a line.

mod handler;

use commerce::adapters::{cart::DynamoCarts, catalog::DynamoCatalog, inventory::DynamoInventory};
use commerce::domain::cart::CartLimits;
use commerce::jwt::JwtVerifier;
use commerce::services::cart::CartContext;
use commerce::{config, telemetry};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let carts_table = config::required("CARTS_TABLE")?;
    let catalog_table = config::required("CATALOG_TABLE")?;
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let limits = CartLimits::from_env()?;
    let resolver = JwtVerifier::from_env()?;
    let aws = config::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let context = CartContext {
        store: DynamoCarts::new(client.clone(), carts_table),
        catalog: DynamoCatalog::new(client.clone(), catalog_table),
        stock: DynamoInventory::new(client, inventory_table),
        resolver,
        limits,
    };
    run(service_fn(|req| handler::handle(&context, req))).await
}
