//! `POST /v1/carts/{cart_id}/quote`: the cart's shipping options and taxes for an address, kept 30 minutes
//! for checkout. Carrier rates are asked here, never at checkout.

mod handler;

use commerce_aws::cart::DynamoCarts;
use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::inventory::DynamoInventory;
use commerce_aws::jwt::JwtVerifier;
use commerce_aws::shipping_config::DynamoShippingConfig;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let catalog_table = config::required("CATALOG_TABLE")?;
    let carts = DynamoCarts::new(dynamo.clone(), config::required("CARTS_TABLE")?);
    let deps = handler::Deps {
        carts: carts.clone(),
        catalog: DynamoCatalog::new(dynamo.clone(), catalog_table.clone()),
        tables: DynamoShippingConfig::new(dynamo.clone(), catalog_table),
        carriers: commerce_lambda::wiring::carriers(&aws).await?,
        quotes: carts,
        verifier: JwtVerifier::from_env()?,
        warehouses: DynamoInventory::new(dynamo.clone(), config::required("INVENTORY_TABLE")?),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
